package oci

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ExitWatcher calls a function when conmon writes an exit file. It uses
// inotify, so exits are seen within milliseconds and no container is polled.
type ExitWatcher struct {
	f    *os.File
	dir  string
	log  *slog.Logger
	done chan struct{}
	once sync.Once
}

// WatchExits watches dir and calls onExit(id) from one goroutine, in
// order, for every exit file created or completed there (conmon writes a
// temporary file and renames it into place). onExit must not block long.
// A queue overflow makes it report every file in dir, so no exit is lost;
// onExit must therefore tolerate ids it has already handled or never knew.
func WatchExits(dir string, onExit func(id string), log *slog.Logger) (*ExitWatcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("exit watcher: %w", err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("exit watcher: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("exit watcher: watch %s: %w", dir, err)
	}
	// A non-blocking fd in an *os.File uses the runtime poller, so Close
	// wakes the reader.
	w := &ExitWatcher{f: os.NewFile(uintptr(fd), "inotify"), dir: dir, log: log, done: make(chan struct{})}
	go w.loop(onExit)
	return w, nil
}

func (w *ExitWatcher) loop(onExit func(string)) {
	defer close(w.done)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.log.Error("exit watcher stopped", "error", err)
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				w.log.Warn("exit watcher queue overflowed; rescanning", "dir", w.dir)
				w.rescan(onExit)
				continue
			}
			name := strings.TrimRight(string(nameBytes), "\x00")
			if name == "" || strings.Contains(name, ".") {
				continue // conmon's temporary files carry a suffix
			}
			onExit(name)
		}
	}
}

func (w *ExitWatcher) rescan(onExit func(string)) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		w.log.Error("exit watcher rescan", "error", err)
		return
	}
	for _, e := range entries {
		if !strings.Contains(e.Name(), ".") {
			onExit(e.Name())
		}
	}
}

// Close stops the watcher and waits for its goroutine.
func (w *ExitWatcher) Close() error {
	var err error
	w.once.Do(func() {
		err = w.f.Close()
		<-w.done
	})
	return err
}
