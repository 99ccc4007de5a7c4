package stagedest

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// chunkSize is how much of a layer's tar each reader of a fanOut gets at
// a time. The unpacking reader runs on a locked thread (inRoot), which
// the scheduler must wake for every hand-over: large chunks keep those
// rare, where tar-split's own pipe hands over every 512-byte header.
const chunkSize = 256 << 10

// chunksInFlight bounds the chunks queued for one reader: how far the
// fastest reader may run ahead of the slowest.
const chunksInFlight = 4

var chunkPool = sync.Pool{New: func() any { return &chunk{buf: make([]byte, chunkSize)} }}

// chunk is one piece of the stream, shared by every reader until each is
// done with it.
type chunk struct {
	buf  []byte
	data []byte
	refs atomic.Int32
}

func (c *chunk) release() {
	if c.refs.Add(-1) == 0 {
		chunkPool.Put(c)
	}
}

// errFanOutAborted ends the stream of every reader once one reader gave
// up; that reader's own error is what the caller reports.
var errFanOutAborted = errors.New("another reader of the layer stream failed")

// fanOut reads a stream once and hands the same bytes to n readers, each
// reading at its own pace, at most chunksInFlight chunks apart.
type fanOut struct {
	readers []*chunkReader
	abort   chan struct{}
	once    sync.Once
}

// newFanOut starts copying src to n readers; tee, if not nil, sees every
// chunk first (for a digest). Every reader must be read to its end or
// Closed.
func newFanOut(src io.Reader, n int, tee io.Writer) *fanOut {
	f := &fanOut{abort: make(chan struct{})}
	chans := make([]chan *chunk, n)
	for i := range chans {
		chans[i] = make(chan *chunk, chunksInFlight)
		f.readers = append(f.readers, &chunkReader{ch: chans[i], f: f})
	}
	go f.run(src, chans, tee)
	return f
}

func (f *fanOut) run(src io.Reader, chans []chan *chunk, tee io.Writer) {
	var err error // io.EOF at the end of src
	defer func() {
		for i, ch := range chans {
			f.readers[i].srcErr.Store(&err)
			close(ch)
		}
	}()
	for err == nil {
		c := chunkPool.Get().(*chunk)
		n := 0
		for n < len(c.buf) && err == nil {
			var m int
			m, err = src.Read(c.buf[n:])
			n += m
		}
		if n == 0 {
			chunkPool.Put(c)
			return
		}
		c.data = c.buf[:n]
		if tee != nil {
			_, _ = tee.Write(c.data)
		}
		c.refs.Store(int32(len(chans)))
		for _, ch := range chans {
			select {
			case ch <- c:
			case <-f.abort:
				// The readers that got c release it, the others
				// never will: it is left to the garbage collector.
				err = errFanOutAborted
				return
			}
		}
	}
}

// chunkReader is one reader's end of a fanOut.
type chunkReader struct {
	ch     <-chan *chunk
	f      *fanOut
	cur    *chunk
	rest   []byte
	srcErr atomic.Pointer[error] // set before ch is closed
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if r.cur != nil {
			r.cur.release()
			r.cur = nil
		}
		c, ok := <-r.ch
		if !ok {
			return 0, *r.srcErr.Load()
		}
		r.cur, r.rest = c, c.data
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// Close gives up this reader: the stream stops for every reader.
func (r *chunkReader) Close() error {
	r.f.once.Do(func() { close(r.f.abort) })
	for c := range r.ch { // unblock the writer
		c.release()
	}
	if r.cur != nil {
		r.cur.release()
		r.cur, r.rest = nil, nil
	}
	return nil
}
