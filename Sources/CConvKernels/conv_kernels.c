#include "conv_kernels.h"

#include <immintrin.h>
#include <stdlib.h>

// dW (Xeon, 1 thread, a chunk of the networks' shapes): 1.28–1.78× im2col + sgemm, 49–127 GFLOP/s; with dY
// transposed element by element the 75-row first layers lost (0.35–0.69×), hence the register transposes.
// Tile shapes: AVX-512 keeps 8 weight rows × 48 pixels (24 of 32 zmm registers) in flight, AVX2 4 × 16
// (8 of 16 ymm); a panel of KC k-rows × P pixels is 24 or 8 KB, inside L1 beside the weights it meets.
// Measured on a Xeon (AVX-512, 1 thread, the networks' five convolution shapes): 8 × 3 × 128 gave 103–125
// GFLOP/s against 55–94 for im2col + OpenBLAS; 8 × 2 and 16 × 1 tiles, and KC 96 or 192, were no better.
// AVX2 had 4 × 24, whose 12 accumulators, 3 pixel vectors and a broadcast take all 16 registers: clang spilled
// an accumulator and rotated the rest through register moves on every k step, which the Xeon held to AVX2 did
// not show and which halved the rate on an AMD EPYC (Zen 3, 1 thread, with the counters of conv_tile.inc:
// `small`'s first layer 23–35 GFLOP/s with 4 × 24, 36–54 with 4 × 16, 41–47 with 2 × 32).
#ifndef NR_AVX2
#define NR_AVX512 8
#define MV_AVX512 3
#define KC_AVX512 128
#define NR_AVX2 4
#define MV_AVX2 2
#define KC_AVX2 128
#endif
// The k loops stay rolled: unrolled, clang rotated the AVX2 accumulators through spare registers.
#ifndef KLOOP
#define KLOOP _Pragma("clang loop unroll(disable)")
#endif
// Pixels per dW block: as many as keep the block's dYᵀ slice for one tile's channels (pixels × tile vectors) in
// WSLICE bytes of L1 while every k-tile passes over it. Each block reloads and stores all K × C_out partial
// sums, so short blocks cost most where that is large: seed's third layer (1600 × 128) ran at 80 GFLOP/s
// with 64-pixel blocks and 103–105 with 128 (256, spilling out of L1: 82); Xeon, 1 thread, same run.
#define WSLICE_AVX512 32768
#define WSLICE_AVX2 16384

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
// Row segments are short (an output row: 7–32 floats): whole vectors, then one masked vector.
static inline __attribute__((always_inline)) void copy_avx512(const float *a, float *b, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(b + i, _mm512_loadu_ps(a + i));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(b + i, m, _mm512_maskz_loadu_ps(m, a + i));
    }
}
#define COPY copy_avx512
// dW tiles: at most 8 k-rows, because each row is a pointer into the input held in a general register: with
// 12 (2 × 12 accumulators) the pointers spilled and the 32-channel first layer of `small` ran at 44–50 GFLOP/s,
// with 8 at 88–116; the 64-channel first layer of `seed` went from 78–91 (6 rows) to 124–130 (5) on good runs.
#define WROWS(mv) ((mv) == 4 ? 5 : 8)
#define WVECTORS 4
#include "isa_avx512.h"
#define NR NR_AVX512
#define MV MV_AVX512
#define KC KC_AVX512
#define WSLICE WSLICE_AVX512
#include "conv_tile.inc"
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
static const int lane_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __attribute__((always_inline)) void copy_avx2(const float *a, float *b, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(b + i, _mm256_loadu_ps(a + i));
    if (i < n) {
        __m256i m = _mm256_loadu_si256((const __m256i *)(lane_mask + 8 - (n - i)));
        _mm256_maskstore_ps(b + i, m, _mm256_maskload_ps(a + i, m));
    }
}
#define COPY copy_avx2
// dW tiles: 10 or 8 accumulators (of 16 registers); at most 8 row pointers, as for AVX-512.
#define WROWS(mv) ((mv) >= 2 ? 5 : 8)
#define WVECTORS 2
#include "isa_avx2.h"
#define NR NR_AVX2
#define MV MV_AVX2
#define KC KC_AVX2
#define WSLICE WSLICE_AVX2
#include "conv_tile.inc"
#pragma clang attribute pop

int ddk_conv_hardware_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 2;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

int ddk_conv_default_isa(void) {
    const int hardware = ddk_conv_hardware_isa();
    const char *choice = getenv("DANN_CONV_ISA");
    if (choice && choice[0] >= '0' && choice[0] <= '2' && choice[1] == 0)
        return choice[0] - '0' < hardware ? choice[0] - '0' : hardware;
    // AVX2 too: with the 5×5 multi-channel layers on the Winograd path, what the direct kernels take is the
    // 3-channel first layers. On an AMD EPYC (Zen 3) against im2col + OpenBLAS's Zen kernels, medians of three
    // runs: `seed`'s first layer 48 / 48 ms forward, 54 / 52 backward at one thread, 29 / 37 and 35 / 35 at two;
    // `small`'s 21 / 22, 24 / 24 at one thread, 10 / 11 and 11 / 13 at two. On the Xeon's AVX2 units `small`'s
    // went 22 → 18 ms forward, 29 → 16 backward.
    return hardware;
}

static int rows(int isa) { return isa == 2 ? NR_AVX512 : NR_AVX2; }
static int pixels(int isa) { return isa == 2 ? MV_AVX512 * 16 : MV_AVX2 * 8; }
static int depth(int isa) { return isa == 2 ? KC_AVX512 : KC_AVX2; }

int ddk_conv_supports(const ddk_conv_shape *s, int isa) {
    return isa > 0 && s->out_channels > 0 && s->out_channels % rows(isa) == 0 && s->kernel <= s->padded_h &&
           s->kernel <= s->padded_w;
}

size_t ddk_conv_packed_weights_floats(const ddk_conv_shape *s, int isa) {
    (void)isa;
    return (size_t)s->out_channels * s->channels * s->kernel * s->kernel;
}

size_t ddk_conv_workspace_floats(const ddk_conv_shape *s, int isa) {
    return (size_t)pixels(isa) * depth(isa) + (size_t)s->out_channels * pixels(isa);
}

void ddk_conv_pack_weights(const float *weight, const ddk_conv_shape *s, int isa, float *packed) {
    const int nr = rows(isa), K = s->channels * s->kernel * s->kernel;
    for (int t = 0; t < s->out_channels / nr; t++)
        for (int k = 0; k < K; k++)
            for (int r = 0; r < nr; r++) packed[((size_t)t * K + k) * nr + r] = weight[(size_t)(t * nr + r) * K + k];
}

void ddk_conv_forward(const float *padded, const float *packed_weights, const float *bias,
                      const ddk_conv_shape *s, int isa, float *y, ptrdiff_t ldy, float *workspace) {
    if (isa == 2) forward_avx512(padded, packed_weights, bias, s, y, ldy, workspace);
    else forward_avx2(padded, packed_weights, bias, s, y, ldy, workspace);
}

int ddk_conv_weight_grad_supports(const ddk_conv_shape *s, int isa) {
    const int vw = isa == 2 ? 16 : 8;
    return isa > 0 && s->out_channels > 0 && s->out_channels % vw == 0 && s->kernel <= s->padded_h &&
           s->kernel <= s->padded_w;
}

size_t ddk_conv_weight_grad_workspace_floats(const ddk_conv_shape *s, int isa) {
    const size_t oh = s->padded_h - s->kernel + 1, ow = s->padded_w - s->kernel + 1;
    const size_t pixels = (size_t)s->images * oh * ow, K = (size_t)s->channels * s->kernel * s->kernel;
    const size_t block = isa == 2 ? weight_grad_pixels_avx512(s->out_channels) : weight_grad_pixels_avx2(s->out_channels);
    return block * s->out_channels + K * s->out_channels + pixels;   // dYᵀ block, dWᵀ sums, pixel offsets
}

void ddk_conv_weight_grad(const float *padded, const float *dy, ptrdiff_t ldy, const ddk_conv_shape *s, int isa,
                          float *dw, int add, float *workspace) {
    if (isa == 2) weight_grad_avx512(padded, dy, ldy, s, dw, add, workspace);
    else weight_grad_avx2(padded, dy, ldy, s, dw, add, workspace);
}
