#include "winograd.h"

#include "conv_kernels.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

// G of F(2, 5) for the points 0, 1, −1, 2, −2, ∞ (solved from Aᵀ[(G g) ⊙ (Bᵀ d)] = the correlation g ⋆ d).
static const double wino_g[6][5] = {
    {1.0 / 4, 0, 0, 0, 0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
    {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
    {0, 0, 0, 0, 1},
};

// Tiles per block of the transform domain (V, M and their gradients: 36 · tb · channels floats each). Small
// blocks keep them in L1/L2 between the transform and the GEMMs; the weight gradient's GEMMs reload dU once per
// block, so backward takes longer ones. Measured on the seed's layers (Xeon, 1 thread): forward 12 tiles
// 5–20 % faster than 24–96; backward within ±10 % from 12 to 48 (E3 best at 12, E6 at 48).
#define WINO_FORWARD_TILES 12
#define WINO_BACKWARD_TILES 24

typedef struct {
    ddk_wino_shape s;
    int c, o;
    int oh, ow;          // output plane
    int th, tw;          // tiles per image: rows, columns
    int py, px;          // packed input plane (zero border; 2·th + 4 rows by 2·tw + 4 columns)
    int qh, qw;          // the output's (and its gradient's) plane as tiles cover it: 2·th by 2·tw
    int tiles, tb;       // tiles of the chunk; tiles per block (a multiple of 12: of every ISA's GEMM rows)
    size_t packed_input, packed_gradient, domain_c, domain_o;
} wino_geometry;

static void wino_plan(const ddk_wino_shape *s, int backward, wino_geometry *g) {
    g->s = *s;
    g->c = s->channels;
    g->o = s->out_channels;
    g->oh = s->height + 2 * s->padding - 4;
    g->ow = s->width + 2 * s->padding - 4;
    g->th = (g->oh + 1) / 2;
    g->tw = (g->ow + 1) / 2;
    g->py = 2 * g->th + 4;
    g->px = 2 * g->tw + 4;
    g->qh = 2 * g->th;
    g->qw = 2 * g->tw;
    g->tiles = s->images * g->th * g->tw;
    const int tb = backward ? WINO_BACKWARD_TILES : WINO_FORWARD_TILES;
    const int all = (g->tiles + 11) / 12 * 12;
    g->tb = tb < all ? tb : all;
    g->packed_input = (size_t)s->images * g->py * g->px * g->c;
    g->packed_gradient = (size_t)s->images * g->qh * g->qw * g->o;
    g->domain_c = (size_t)36 * g->tb * g->c;
    g->domain_o = (size_t)36 * g->tb * g->o;
}

// Pixel offset of tile t's 6×6 input patch in the packed input.
static inline ptrdiff_t tile_origin(const wino_geometry *g, int t) {
    const int per = g->th * g->tw, n = t / per, r = t % per;
    return ((ptrdiff_t)n * g->py + 2 * (r / g->tw)) * g->px + 2 * (r % g->tw);
}

static inline void tile_position(const wino_geometry *g, int t, int *n, int *oy, int *ox) {
    const int per = g->th * g->tw, r = t % per;
    *n = t / per;
    *oy = 2 * (r / g->tw);
    *ox = 2 * (r % g->tw);
}

#ifndef KLOOP
#define KLOOP _Pragma("clang loop unroll(disable)")
#endif

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#include "isa_avx512.h"
// 6 rows × 4 vectors: 24 accumulators, 4 column vectors and a broadcast of 32 registers.
#define WMR 6
#define WNV 4
#include "winograd_tile.inc"
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "isa_avx2.h"
// 4 rows × 2 vectors: 8 accumulators. 4 × 3 filled all 16 registers and clang rotated the accumulators through
// moves and a spill on every step (conv_kernels.c's tile notes); on an AMD EPYC (Zen 3, 1 thread) 4 × 2 ran the
// transformed products 1.5–2× faster: `small`'s second layer 9.0–9.4 → 4.6–5.4 ms forward, 18.3–18.5 → 9.5–11.6
// backward; 2 × 4 and 6 × 2 were between.
#define WMR 4
#define WNV 2
#include "winograd_tile.inc"
#pragma clang attribute pop

static int vector_width(int isa) { return isa == 2 ? 16 : 8; }

int ddk_wino_default_isa(void) {
    const int hardware = ddk_conv_hardware_isa();
    const char *choice = getenv("DANN_CONV_WINOGRAD");
    if (choice && choice[0] >= '0' && choice[0] <= '2' && choice[1] == 0)
        return choice[0] - '0' < hardware ? choice[0] - '0' : hardware;
    return hardware;
}

int ddk_wino_supports(const ddk_wino_shape *s, int isa) {
    if (isa < 1 || isa > 2) return 0;
    const int vw = vector_width(isa);
    return s->channels > 0 && s->channels % vw == 0 && s->out_channels > 0 && s->out_channels % vw == 0 &&
           s->padding >= 0 && s->height + 2 * s->padding >= 5 && s->width + 2 * s->padding >= 5;
}

size_t ddk_wino_weights_floats(const ddk_wino_shape *s) { return (size_t)36 * s->channels * s->out_channels; }

void ddk_wino_transform_weights(const float *weight, const ddk_wino_shape *s, int o_begin, int o_end, float *u,
                                float *ut) {
    const int C = s->channels, O = s->out_channels;
    for (int o = o_begin; o < o_end; o++)
        for (int c = 0; c < C; c++) {
            const float *w = weight + ((size_t)o * C + c) * 25;
            double half[6][5];   // G w
            for (int a = 0; a < 6; a++)
                for (int j = 0; j < 5; j++) {
                    double sum = 0;
                    for (int i = 0; i < 5; i++) sum += wino_g[a][i] * w[i * 5 + j];
                    half[a][j] = sum;
                }
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) {
                    double sum = 0;
                    for (int j = 0; j < 5; j++) sum += half[a][j] * wino_g[b][j];
                    const int xi = a * 6 + b;
                    u[((size_t)xi * C + c) * O + o] = (float)sum;
                    ut[((size_t)xi * O + o) * C + c] = (float)sum;
                }
        }
}

void ddk_wino_weight_gradient(const float *du, const ddk_wino_shape *s, int o_begin, int o_end, float *dw, int add) {
    const int C = s->channels, O = s->out_channels;
    for (int o = o_begin; o < o_end; o++)
        for (int c = 0; c < C; c++) {
            double half[5][6];   // Gᵀ du
            for (int i = 0; i < 5; i++)
                for (int b = 0; b < 6; b++) {
                    double sum = 0;
                    for (int a = 0; a < 6; a++) sum += wino_g[a][i] * du[((size_t)(a * 6 + b) * C + c) * O + o];
                    half[i][b] = sum;
                }
            float *w = dw + ((size_t)o * C + c) * 25;
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 5; j++) {
                    double sum = 0;
                    for (int b = 0; b < 6; b++) sum += half[i][b] * wino_g[b][j];
                    w[i * 5 + j] = add ? w[i * 5 + j] + (float)sum : (float)sum;
                }
        }
}

size_t ddk_wino_workspace_floats(const ddk_wino_shape *s, int isa, int backward) {
    (void)isa;
    wino_geometry g;
    wino_plan(s, backward, &g);
    // P, V, M (dM) and Yp (Q); backward adds dV and dP.
    const size_t forward = g.packed_input + g.domain_c + g.domain_o + g.packed_gradient;
    return backward ? forward + g.domain_c + g.packed_input : forward;
}

void ddk_wino_forward(const float *x, const float *u, const float *bias, const ddk_wino_shape *s, int isa, float *y,
                      float *workspace) {
    if (isa == 2) wino_forward_avx512(x, u, bias, s, y, workspace);
    else wino_forward_avx2(x, u, bias, s, y, workspace);
}

void ddk_wino_backward(const float *x, const float *dy, const float *ut, const ddk_wino_shape *s, int isa, float *dx,
                       float *du, int add, float *workspace) {
    if (isa == 2) wino_backward_avx512(x, dy, ut, s, dx, du, add, workspace);
    else wino_backward_avx2(x, dy, ut, s, dx, du, add, workspace);
}
