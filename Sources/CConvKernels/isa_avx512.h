// The vector vocabulary the kernel templates (conv_tile.inc, winograd_tile.inc) are written in, for AVX-512F:
// included (no guard) inside a `#pragma clang attribute push(target("avx512f"))` region before a template, and
// isa_end.h after it.
#include "vector_transpose.h"
#define SFX avx512
#define VW 16
#define VEC __m512
#define LOAD _mm512_loadu_ps
#define STORE _mm512_storeu_ps
#define SET1 _mm512_set1_ps
#define ZERO _mm512_setzero_ps
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define FMA _mm512_fmadd_ps
#define FNMA _mm512_fnmadd_ps
#define TRANSPOSE transpose_avx512
