#include "textflag.h"

// FOLD folds the 128-bit register R forward over the distance whose
// multipliers K holds (low qword for R's first 8 bytes, high qword for its
// last 8) and adds the block D: R = R.lo·K.lo ⊕ R.hi·K.hi ⊕ D. T is
// scratch.
#define FOLD(R, K, D, T) \
	MOVO R, T \
	PCLMULQDQ $0x00, K, R \
	PCLMULQDQ $0x11, K, T \
	PXOR T, R \
	PXOR D, R

// func fold(raw uint64, p []byte, k *[4]uint64) (lo, hi uint64)
TEXT ·fold(SB), NOSPLIT, $0-56
	MOVQ raw+0(FP), AX
	MOVQ p_base+8(FP), SI
	MOVQ p_len+16(FP), CX
	MOVQ k+32(FP), DX
	MOVOU 0(DX), X8  // over 4 blocks
	MOVOU 16(DX), X9 // over 1 block

	// Four lanes, one block each; the register goes into the first.
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVQ AX, X4
	PXOR X4, X0
	ADDQ $64, SI
	SUBQ $64, CX

loop4:
	CMPQ CX, $64
	JB merge
	MOVOU 0(SI), X4
	MOVOU 16(SI), X5
	MOVOU 32(SI), X6
	MOVOU 48(SI), X7
	FOLD(X0, X8, X4, X10)
	FOLD(X1, X8, X5, X11)
	FOLD(X2, X8, X6, X12)
	FOLD(X3, X8, X7, X13)
	ADDQ $64, SI
	SUBQ $64, CX
	JMP loop4

merge:
	// The lanes hold four consecutive blocks: fold each into the next.
	FOLD(X0, X9, X1, X10)
	FOLD(X0, X9, X2, X10)
	FOLD(X0, X9, X3, X10)

loop1:
	CMPQ CX, $16
	JB done
	MOVOU 0(SI), X4
	FOLD(X0, X9, X4, X10)
	ADDQ $16, SI
	SUBQ $16, CX
	JMP loop1

done:
	MOVQ X0, AX
	PEXTRQ $1, X0, BX
	MOVQ AX, lo+40(FP)
	MOVQ BX, hi+48(FP)
	RET
