package pidns

import "encoding/binary"

// initProgram is what a pod's init runs: a tiny static program that sets
// SIGCHLD to SIG_IGN (so the kernel reaps the orphans re-parented to it)
// and then waits forever. A pause image needs an image pull, a runc run
// and a conmon per pod; a re-executed crio would carry megabytes of
// initialised Go packages for the pod's lifetime. This keeps a page or two
// and starts in about a millisecond. It handles no signal, so as PID 1 of
// its namespace nothing inside the pod can kill it; the daemon uses
// SIGKILL.
//
// The machine code, per architecture (assembled and checked with the Go
// assembler and objdump):
//
//	amd64: xor eax,eax; push rax x3; push 1        ; struct sigaction {SIG_IGN, 0, 0, 0} on the stack
//	       mov edi,17; mov rsi,rsp; xor edx,edx; mov r10d,8; mov eax,13; syscall   ; rt_sigaction(SIGCHLD, ...)
//	loop:  mov eax,34; syscall; jmp loop                                          ; pause()
//	arm64: sub sp,sp,#32; mov x1,#1; str x1,[sp]; str xzr,[sp,#8]; str xzr,[sp,#16]; str xzr,[sp,#24]
//	       mov x0,#17; mov x1,sp; mov x2,xzr; mov x3,#8; mov x8,#134; svc #0       ; rt_sigaction
//	       mov x0..x4,xzr; mov x8,#73                                              ; ppoll(NULL, 0, NULL, NULL)
//	loop:  svc #0; b loop
var waitForeverCode = map[string]struct {
	machine uint16
	code    []byte
}{
	"amd64": {machine: 0x3e, code: []byte{
		0x31, 0xc0, 0x50, 0x50, 0x50, 0x6a, 0x01,
		0xbf, 0x11, 0x00, 0x00, 0x00, 0x48, 0x89, 0xe6, 0x31, 0xd2,
		0x41, 0xba, 0x08, 0x00, 0x00, 0x00, 0xb8, 0x0d, 0x00, 0x00, 0x00, 0x0f, 0x05,
		0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7,
	}},
	"arm64": {machine: 0xb7, code: arm64Code(
		0xd10083ff, 0xb24003e1, 0xf90003e1, 0xf90007ff, 0xf9000bff, 0xf9000fff,
		0xd2800220, 0x910003e1, 0xaa1f03e2, 0xb27d03e3, 0xd28010c8, 0xd4000001,
		0xaa1f03e0, 0xaa1f03e1, 0xaa1f03e2, 0xaa1f03e3, 0xaa1f03e4, 0xd2800928,
		0xd4000001, 0x17ffffff,
	)},
}

func arm64Code(insns ...uint32) []byte {
	b := make([]byte, 0, 4*len(insns))
	for _, i := range insns {
		b = binary.LittleEndian.AppendUint32(b, i)
	}
	return b
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
