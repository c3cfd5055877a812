// Direct (im2col-free) convolution kernels: the GEMM's B panel is gathered straight from the zero-bordered
// input into a cache-sized buffer, so the column matrix is never written out and no BLAS packing follows.
// The instruction set is chosen at run time; callers fall back to im2col + BLAS when the ISA is 0 or the
// layer does not fit (`ddk_conv_supports`).
#ifndef DANN_CONV_KERNELS_H
#define DANN_CONV_KERNELS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A stride-1 convolution over a chunk of images held channel-major and zero-bordered: channel c of image n
/// starts at c · channel_stride + n · padded_h · padded_w. The output is [out_channels][images][out_h][out_w]
/// with rows `ldy` apart.
typedef struct {
    ptrdiff_t channel_stride;
    int channels;
    int images;
    int padded_h;
    int padded_w;
    int kernel;
    int out_channels;
} ddk_conv_shape;

/// What this CPU can run: 2 AVX-512F, 1 AVX2 + FMA, 0 neither.
int ddk_conv_hardware_isa(void);

/// What layers use unless told otherwise: the best the CPU has (2 AVX-512, 1 AVX2, else 0: im2col + BLAS).
/// `DANN_CONV_ISA=0|1|2` chooses (capped at the hardware's).
int ddk_conv_default_isa(void);

/// Whether the kernels handle this shape at this ISA (output channels a multiple of the tile's rows).
int ddk_conv_supports(const ddk_conv_shape *shape, int isa);

/// Floats of the packed weights that `ddk_conv_pack_weights` writes.
size_t ddk_conv_packed_weights_floats(const ddk_conv_shape *shape, int isa);

/// Floats of one thread's scratch for `ddk_conv_forward`.
size_t ddk_conv_workspace_floats(const ddk_conv_shape *shape, int isa);

/// Reorders weights [out_channels][channels·kernel·kernel] (PyTorch's order) into the tiles the
/// micro-kernel broadcasts from.
void ddk_conv_pack_weights(const float *weight, const ddk_conv_shape *shape, int isa, float *packed);

/// y[o][p] = bias[o] + Σ_k w[o][k] · col[k][p] for every output pixel p of the chunk (bias may be NULL).
void ddk_conv_forward(const float *padded, const float *packed_weights, const float *bias,
                      const ddk_conv_shape *shape, int isa, float *y, ptrdiff_t ldy, float *workspace);

/// Whether `ddk_conv_weight_grad` handles this shape (output channels a multiple of the vector width).
int ddk_conv_weight_grad_supports(const ddk_conv_shape *shape, int isa);

/// Floats of one thread's scratch for `ddk_conv_weight_grad` (its chunk of `shape->images`).
size_t ddk_conv_weight_grad_workspace_floats(const ddk_conv_shape *shape, int isa);

/// dw[o][k] = (add ? dw[o][k] : 0) + Σ_p dy[o][p] · col[k][p] over the chunk's output pixels, the pixels in
/// order (so the sum does not depend on how anything else is split). dy rows are `ldy` apart.
void ddk_conv_weight_grad(const float *padded, const float *dy, ptrdiff_t ldy, const ddk_conv_shape *shape, int isa,
                          float *dw, int add, float *workspace);

#ifdef __cplusplus
}
#endif

#endif
