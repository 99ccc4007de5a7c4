package pidns

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The helper, once set up, replaces itself with a tiny static program that
// only waits forever: a re-executed crio keeps several MiB of private
// memory from initialising its packages, per pod, for the pod's lifetime;
// this program keeps a page or two. It needs no signal handling: SIGCHLD is
// ignored before the exec (the disposition survives it), so the kernel
// reaps orphans; as PID 1 of its namespace it cannot be signalled from
// inside the pod except by handled signals, of which there are none; and
// the daemon stops it with SIGKILL.
//
// The machine code, per architecture (verified with the Go assembler):
//
//	amd64:  loop: mov eax, 34 (pause); syscall; jmp loop
//	arm64:  mov x8, #73 (ppoll; x0-x3 are zero at entry); loop: svc #0; b loop
var waitForeverCode = map[string]struct {
	machine uint16
	code    []byte
}{
	"amd64": {machine: 0x3e, code: []byte{0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7}},
	"arm64": {machine: 0xb7, code: []byte{0x28, 0x09, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4, 0xff, 0xff, 0xff, 0x17}},
}

// waitForeverELF builds a minimal static ELF executable (one R+X segment)
// around the code for arch; nil when there is none.
func waitForeverELF(arch string) []byte {
	c, ok := waitForeverCode[arch]
	if !ok {
		return nil
	}
	const (
		base    = 0x400000
		ehSize  = 64
		phSize  = 56
		hdrSize = ehSize + phSize
	)
	total := uint64(hdrSize + len(c.code))
	b := make([]byte, hdrSize, total)
	le := binary.LittleEndian
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */})
	le.PutUint16(b[16:], 2) // ET_EXEC
	le.PutUint16(b[18:], c.machine)
	le.PutUint32(b[20:], 1)            // EV_CURRENT
	le.PutUint64(b[24:], base+hdrSize) // entry: right after the headers
	le.PutUint64(b[32:], ehSize)       // program headers follow the ELF header
	le.PutUint16(b[52:], ehSize)       // e_ehsize
	le.PutUint16(b[54:], phSize)       // e_phentsize
	le.PutUint16(b[56:], 1)            // e_phnum
	ph := b[ehSize:]
	le.PutUint32(ph[0:], 1)     // PT_LOAD
	le.PutUint32(ph[4:], 5)     // PF_R | PF_X
	le.PutUint64(ph[8:], 0)     // offset: the whole file
	le.PutUint64(ph[16:], base) // vaddr
	le.PutUint64(ph[24:], base) // paddr
	le.PutUint64(ph[32:], total)
	le.PutUint64(ph[40:], total)
	le.PutUint64(ph[48:], 0x1000)
	return append(b, c.code...)
}

// execWaitForever replaces the process with the wait-forever program,
// loaded from a sealed memfd (the helper's root is an empty noexec tmpfs,
// and the memfd needs no path). It returns only on failure.
func execWaitForever(argv []string) error {
	elf := waitForeverELF(runtime.GOARCH)
	if elf == nil {
		return fmt.Errorf("no wait-forever program for %s", runtime.GOARCH)
	}
	fd, err := unix.MemfdCreate("crio-pod-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	if _, err := unix.Write(fd, elf); err != nil {
		unix.Close(fd)
		return fmt.Errorf("memfd: %w", err)
	}
	// Sealed, so nothing can change the program under a running pod.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE); err != nil {
		unix.Close(fd)
		return fmt.Errorf("memfd seal: %w", err)
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		unix.Close(fd)
		return err
	}
	envp := []*byte{nil}
	empty, _ := unix.BytePtrFromString("")
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])), unix.AT_EMPTY_PATH, 0)
	unix.Close(fd)
	return fmt.Errorf("execveat: %w", errno)
}
