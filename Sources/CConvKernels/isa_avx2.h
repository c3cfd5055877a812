// isa_avx512.h's vocabulary for AVX2 + FMA (8 floats per vector).
#include "vector_transpose.h"
#define SFX avx2
#define VW 8
#define VEC __m256
#define LOAD _mm256_loadu_ps
#define STORE _mm256_storeu_ps
#define SET1 _mm256_set1_ps
#define ZERO _mm256_setzero_ps
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define FMA _mm256_fmadd_ps
#define FNMA _mm256_fnmadd_ps
#define TRANSPOSE transpose_avx2
