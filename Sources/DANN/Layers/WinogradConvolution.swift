import CConvKernels

/// Conv2D's path for 5×5 stride-1 layers whose channel counts fill whole vectors (the seed networks' second and
/// third convolutions, `small`'s second): Winograd's F(2×2, 5×5) in Sources/CConvKernels/winograd.c, 36
/// multiplications per 2×2 output block and channel pair where the direct kernels make 100.
///
/// The batch is cut into the layer's chunks (`Conv2D.ChunkPlan`) and threads take whole chunks, as on the other
/// paths. The weight gradient is summed in the transform domain: each of the fixed `Conv2D.weightGroups` groups of
/// chunks accumulates its own dU in chunk order, the groups are added in group order and dW = Gᵀ dU G follows, so
/// the result does not depend on the thread count.
final class WinogradConvolution {
    let geometry: ConvGeometry
    let outChannels: Int
    let isa: Int32
    private let u = FloatBuffer()
    private let ut = FloatBuffer()
    private let partial = FloatBuffer()
    private var workspaces: [FloatBuffer] = []

    /// nil when the layer is not a 5×5 stride-1 convolution this ISA's kernels take.
    init?(geometry: ConvGeometry, outChannels: Int, isa: Int) {
        guard isa > 0, geometry.kernel == 5, geometry.stride == 1 else { return nil }
        self.geometry = geometry
        self.outChannels = outChannels
        self.isa = Int32(isa)
        var probe = shape(images: 1, strides: .channelMajor(geometry, batch: 1), outChannelStride: geometry.outPlaneSize)
        guard ddk_wino_supports(&probe, self.isa) != 0 else { return nil }
    }

    private func shape(images: Int, strides s: PlaneStrides, outChannelStride: Int) -> ddk_wino_shape {
        ddk_wino_shape(channels: Int32(geometry.channels), out_channels: Int32(outChannels),
                       height: Int32(geometry.height), width: Int32(geometry.width), padding: Int32(geometry.padding),
                       images: Int32(images), channel_stride: s.channel, image_stride: s.image,
                       out_channel_stride: outChannelStride, out_image_stride: geometry.outPlaneSize)
    }

    private var weightFloats: Int { 36 * geometry.channels * outChannels }

    /// Workspaces for `threads` threads, grown before the parallel part.
    private func prepare(_ threads: Int, shape: ddk_wino_shape, backward: Bool) {
        var s = shape
        let floats = ddk_wino_workspace_floats(&s, isa, backward ? 1 : 0)
        while workspaces.count < threads { workspaces.append(FloatBuffer()) }
        for w in workspaces.prefix(threads) { _ = w.reserve(floats) }
    }

    /// y = conv(x) + bias; also keeps Uᵀ for the backward pass (the weights do not change in between).
    func forward(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, batch: Int,
                 strides s: PlaneStrides, plan: Conv2D.ChunkPlan, into y: UnsafeMutablePointer<Float>) {
        let plane = geometry.outPlaneSize
        let template = shape(images: plan.imagesPerChunk, strides: s, outChannelStride: batch * plane)
        let threads = min(Parallel.threads, plan.chunks)
        prepare(threads, shape: template, backward: false)
        transformWeights(weight, shape: template)
        let u = UnsafePointer(self.u.pointer), isa = isa
        Parallel.forParts(threads) { t in
            let w = workspaces[t]
            var chunk = template
            for i in Conv2D.ChunkPlan.share(t, of: threads, count: plan.chunks) {
                let (n0, count) = plan.images(i)
                chunk.images = Int32(count)
                ddk_wino_forward(x + n0 * s.image, u, bias, &chunk, isa, y + n0 * plane, w.pointer)
            }
        }
    }

    /// dW (added to the arena's when `accumulate`) and, when `dx` is given, the input gradient.
    func backward(_ x: UnsafePointer<Float>, gradOutput dy: UnsafePointer<Float>, batch: Int, strides s: PlaneStrides,
                  plan: Conv2D.ChunkPlan, dx: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                  accumulate: Bool) {
        let plane = geometry.outPlaneSize, count = weightFloats
        let template = shape(images: plan.imagesPerChunk, strides: s, outChannelStride: batch * plane)
        let groups = min(Conv2D.weightGroups, plan.chunks)
        let threads = min(Parallel.threads, groups)
        prepare(threads, shape: template, backward: true)
        let du = partial.reserve((groups + 1) * count)
        let ut = UnsafePointer(self.ut.pointer), isa = isa
        Parallel.forParts(threads) { t in
            let w = workspaces[t]
            var chunk = template
            for g in Conv2D.ChunkPlan.share(t, of: threads, count: groups) {
                for (j, i) in Conv2D.ChunkPlan.share(g, of: groups, count: plan.chunks).enumerated() {
                    let (n0, images) = plan.images(i)
                    chunk.images = Int32(images)
                    ddk_wino_backward(x + n0 * s.image, dy + n0 * plane, ut, &chunk, isa, dx.map { $0 + n0 * s.image },
                                      du + g * count, j > 0 ? 1 : 0, w.pointer)
                }
            }
        }
        let sum = du + groups * count
        Parallel.forRanges(count, work: groups * count) { r in
            for e in r {
                var total = du[e]
                for g in 1..<groups { total += du[g * count + e] }
                sum[e] = total
            }
        }
        Parallel.forRanges(outChannels, work: count) { r in
            var s = template
            ddk_wino_weight_gradient(sum, &s, Int32(r.lowerBound), Int32(r.upperBound), gradWeight, accumulate ? 1 : 0)
        }
    }

    private func transformWeights(_ weight: UnsafePointer<Float>, shape: ddk_wino_shape) {
        let u = self.u.reserve(weightFloats), ut = self.ut.reserve(weightFloats)
        Parallel.forRanges(outChannels, work: weightFloats) { r in
            var s = shape
            ddk_wino_transform_weights(weight, &s, Int32(r.lowerBound), Int32(r.upperBound), u, ut)
        }
    }
}
