// Register transposes of a VW × VW block of floats, shared by the direct and the Winograd kernels.
#ifndef DANN_VECTOR_TRANSPOSE_H
#define DANN_VECTOR_TRANSPOSE_H

#include <immintrin.h>
#include <stddef.h>

// dst[j][i] = src[i][j] for a 16 × 16 block (rows lds and ldd floats apart): 32-bit then 64-bit interleaves
// within 128-bit lanes, then two rounds of lane shuffles.
static inline __attribute__((always_inline, target("avx512f")))
void transpose_avx512(const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(src + i * lds);
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int m = 0; m < 4; m++) {   // u[4m + q], lane L: column 4L + q, channels 4m … 4m + 3
        __m512d a = _mm512_castps_pd(t[4 * m]), b = _mm512_castps_pd(t[4 * m + 2]);
        __m512d c = _mm512_castps_pd(t[4 * m + 1]), d = _mm512_castps_pd(t[4 * m + 3]);
        u[4 * m] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        u[4 * m + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        u[4 * m + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        u[4 * m + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    for (int q = 0; q < 4; q++) {
        __m512 s01 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44), s23 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xEE);
        __m512 z01 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44), z23 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xEE);
        _mm512_storeu_ps(dst + q * ldd, _mm512_shuffle_f32x4(s01, z01, 0x88));
        _mm512_storeu_ps(dst + (4 + q) * ldd, _mm512_shuffle_f32x4(s01, z01, 0xDD));
        _mm512_storeu_ps(dst + (8 + q) * ldd, _mm512_shuffle_f32x4(s23, z23, 0x88));
        _mm512_storeu_ps(dst + (12 + q) * ldd, _mm512_shuffle_f32x4(s23, z23, 0xDD));
    }
}
// The 8 × 8 version of transpose_avx512.
static inline __attribute__((always_inline, target("avx2,fma")))
void transpose_avx2(const float *src, ptrdiff_t lds, float *dst, ptrdiff_t ldd) {
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * lds);
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int m = 0; m < 2; m++) {
        __m256d a = _mm256_castps_pd(t[4 * m]), b = _mm256_castps_pd(t[4 * m + 2]);
        __m256d c = _mm256_castps_pd(t[4 * m + 1]), d = _mm256_castps_pd(t[4 * m + 3]);
        u[4 * m] = _mm256_castpd_ps(_mm256_unpacklo_pd(a, b));
        u[4 * m + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(a, b));
        u[4 * m + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(c, d));
        u[4 * m + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(c, d));
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_ps(dst + q * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x20));
        _mm256_storeu_ps(dst + (4 + q) * ldd, _mm256_permute2f128_ps(u[q], u[4 + q], 0x31));
    }
}
#endif
