#include "textflag.h"

// FOLD: as in fold_amd64.s, R = R.lo·K.lo ⊕ R.hi·K.hi ⊕ D, with T as
// scratch; PMULL multiplies the low halves, PMULL2 the high ones.
#define FOLD(R, K, D, T) \
	VPMULL2 R.D2, K.D2, T.Q1 \
	VPMULL R.D1, K.D1, R.Q1 \
	VEOR T.B16, R.B16, R.B16 \
	VEOR D.B16, R.B16, R.B16

// func fold(raw uint64, p []byte, k *[4]uint64) (lo, hi uint64)
TEXT ·fold(SB), NOSPLIT, $0-56
	MOVD raw+0(FP), R0
	MOVD p_base+8(FP), R1
	MOVD p_len+16(FP), R2
	MOVD k+32(FP), R3
	VLD1 (R3), [V8.D2, V9.D2] // over 4 blocks; over 1 block

	// Four lanes, one block each; the register goes into the first.
	VLD1.P 64(R1), [V0.B16, V1.B16, V2.B16, V3.B16]
	VEOR V4.B16, V4.B16, V4.B16
	VMOV R0, V4.D[0]
	VEOR V4.B16, V0.B16, V0.B16
	SUB $64, R2

loop4:
	CMP $64, R2
	BLT merge
	VLD1.P 64(R1), [V4.B16, V5.B16, V6.B16, V7.B16]
	FOLD(V0, V8, V4, V10)
	FOLD(V1, V8, V5, V11)
	FOLD(V2, V8, V6, V12)
	FOLD(V3, V8, V7, V13)
	SUB $64, R2
	B loop4

merge:
	// The lanes hold four consecutive blocks: fold each into the next.
	FOLD(V0, V9, V1, V10)
	FOLD(V0, V9, V2, V10)
	FOLD(V0, V9, V3, V10)

loop1:
	CMP $16, R2
	BLT done
	VLD1.P 16(R1), [V4.B16]
	FOLD(V0, V9, V4, V10)
	SUB $16, R2
	B loop1

done:
	VMOV V0.D[0], R0
	VMOV V0.D[1], R1
	MOVD R0, lo+40(FP)
	MOVD R1, hi+48(FP)
	RET
