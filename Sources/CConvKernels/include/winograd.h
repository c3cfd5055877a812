// 5×5 stride-1 convolutions by Winograd's minimal filtering F(2×2, 5×5) (Lavin & Gray 2016): each 2×2 block of
// output pixels of one channel pair costs 36 multiplications instead of 100, in 36 independent GEMMs (one per
// point ξ of the 6×6 transform domain) between the transformed input tiles V and the transformed weights U:
//   y_tile = Aᵀ [Σ_c U[c,o] ⊙ V[c]] A,   U = G g Gᵀ,   V = Bᵀ d B   (d: the 6×6 input patch of the tile).
// The backward pass is that algorithm's adjoint: dM = A dY Aᵀ, dU = Σ_tiles dM ⊙ V (dW = Gᵀ dU G), and
// dV = Σ_o dM ⊙ U, added into the input gradient as B dV Bᵀ over the overlapping 6×6 patches.
// Interpolation points 0, ±1, ±2, ∞ (Bᵀ is the one of F(4×4, 3×3)).
//
// Tiles hold all channels of one pixel together (channels innermost, vectorized), so every transform is plain
// vector arithmetic; callers' tensors are channel-major or image-major and are repacked per chunk.
#ifndef DANN_WINOGRAD_H
#define DANN_WINOGRAD_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A chunk of `images` images. Element (c, n, y, x) of the input (and of its gradient) is at
/// c · channel_stride + n · image_stride + y · width + x; element (o, n, y, x) of the output (and of its
/// gradient) at o · out_channel_stride + n · out_image_stride + y · out_w + x, out_w = width + 2·padding − 4.
typedef struct {
    int channels;
    int out_channels;
    int height;
    int width;
    int padding;
    int images;
    ptrdiff_t channel_stride, image_stride;
    ptrdiff_t out_channel_stride, out_image_stride;
} ddk_wino_shape;

/// What 5×5 layers use unless told otherwise: the CPU's best (2 AVX-512F, 1 AVX2 + FMA, 0 neither: im2col
/// or the direct kernels); `DANN_CONV_WINOGRAD=0|1|2` chooses (capped at the hardware's).
int ddk_wino_default_isa(void);

/// Whether this ISA (2 AVX-512F, 1 AVX2 + FMA) handles the shape: 5×5 kernel (implied), channels and output
/// channels multiples of the vector width, an output at least one pixel wide.
int ddk_wino_supports(const ddk_wino_shape *shape, int isa);

/// Floats of U (and of dU): 36 · channels · out_channels, laid out [ξ][c][o].
size_t ddk_wino_weights_floats(const ddk_wino_shape *shape);

/// U[ξ][c][o] = (G w[o][c] Gᵀ)[ξ] from PyTorch's [o][c][5][5] weights, and Uᵀ [ξ][o][c], for output channels
/// o_begin ..< o_end (computed in Double).
void ddk_wino_transform_weights(const float *weight, const ddk_wino_shape *shape, int o_begin, int o_end, float *u,
                                float *ut);

/// dw[o][c] (+)= Gᵀ du[·][c][o] G for output channels o_begin ..< o_end: the weight gradient from the transform
/// domain's (computed in Double).
void ddk_wino_weight_gradient(const float *du, const ddk_wino_shape *shape, int o_begin, int o_end, float *dw, int add);

/// Floats of one thread's scratch for `ddk_wino_forward` (backward = 0) or `ddk_wino_backward` (1).
size_t ddk_wino_workspace_floats(const ddk_wino_shape *shape, int isa, int backward);

/// y = conv(x, w) + bias for the chunk (bias may be NULL).
void ddk_wino_forward(const float *x, const float *u, const float *bias, const ddk_wino_shape *shape, int isa,
                      float *y, float *workspace);

/// du[ξ][c][o] (+)= Σ over the chunk's tiles, in tile order, of V ⊙ dM; and when dx is not NULL the chunk's
/// input gradient (overwritten) from Uᵀ.
void ddk_wino_backward(const float *x, const float *dy, const float *ut, const ddk_wino_shape *shape, int isa,
                       float *dx, float *du, int add, float *workspace);

#ifdef __cplusplus
}
#endif

#endif
