import CConvKernels

/// k×k convolution as im2col + GEMM. Output is channel-major [Cout][N][OH][OW] so the GEMM writes it
/// directly; the input may be image-major (data) or channel-major (previous layer).
///
/// Where the CPU has AVX-512 (`directISA`) the column matrix is never formed: the micro-kernels of
/// Sources/CConvKernels gather cache-sized panels straight from the (zero-bordered) input — forward, dW,
/// and dx of a "same" convolution as a forward of dY with the flipped kernel — which saves im2col's write,
/// OpenBLAS's packing copy and the bias pass (1.2–2.2× forward, 1.3–1.8× dW, at one thread on the
/// networks' shapes; docs/design.md §6).
///
/// The batch is processed in chunks of whole images whose column matrix fits in cache (`chunkFloats`):
/// a whole-batch column matrix (321 MB for the seed's second conv at 256 images) would be written to and
/// read back from DRAM, while a cache-sized one is consumed by the GEMM while still hot. Each thread of the
/// pool takes whole chunks — im2col into its own column buffer, then a single-threaded GEMM — so the
/// columns stay in that core's cache and the memory-bound unfolding runs on every core at once. Backward
/// rebuilds each chunk's columns from the input (which the layer contract keeps alive until the next
/// forward) instead of storing them. dW sums over the chunks in `weightGroups` fixed groups, added in group
/// order at the end, so the result is the same whatever the thread count. A pass that accumulates
/// (`GradientAccumulating`) adds that sum, and the bias sums, to the gradients already in the arena.
public final class Conv2D: GradientAccumulating {
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let inputIsImageMajor: Bool
    /// Upper bound on the floats of one chunk's column matrix (at least one image per chunk). 4 MB measured
    /// best on a 2 MB-L2 core among 0.5–8 MB (the seed's second conv: 3 images per chunk).
    public var chunkFloats = 1 << 20
    /// Partial dW sums per backward (at most; fewer when there are fewer chunks). Chunks are counted in
    /// multiples of it so that groups, and the threads that take them, get equal shares.
    public static let weightGroups = 8
    public var accumulatesGradients = false
    /// Instruction set of the direct forward kernel (2 AVX-512, 1 AVX2), or 0 for im2col + BLAS; set by
    /// `DANN_CONV_ISA` or the CPU (`ddk_conv_default_isa`). Tests compare the paths by setting it.
    public var directISA = Int(ddk_conv_default_isa())
    /// Instruction set of the Winograd F(2×2, 5×5) path for the 5×5 layers it takes (`WinogradConvolution`), or 0
    /// for none; set by `DANN_CONV_WINOGRAD` or the CPU (`ddk_wino_default_isa`).
    public var winogradISA = Int(ddk_wino_default_isa())
    /// What a new layer runs: "avx512", "avx2" or "blas" (bench reports it).
    public static var defaultKernelsName: String { ["blas", "avx2", "avx512"][Int(ddk_conv_default_isa())] }
    /// What a new layer's Winograd path runs: "avx512", "avx2" or "off".
    public static var defaultWinogradName: String { ["off", "avx2", "avx512"][Int(ddk_wino_default_isa())] }
    /// The Winograd path decided for `winogradISA` (nil inside: the layer is not one it takes), kept so that the
    /// decision, and the path's buffers, are made once.
    private var winogradPath: (isa: Int, path: WinogradConvolution?)?
    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var gradWeight: UnsafeMutablePointer<Float>!
    private var gradBias: UnsafeMutablePointer<Float>!
    private var input: UnsafePointer<Float>?
    private var workspaces: [Workspace] = []
    private let partialWeights = FloatBuffer()
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()

    /// One thread's chunk buffers: its im2col (reused for dcol in backward) and its zero-bordered input.
    private final class Workspace {
        let col = FloatBuffer()
        let padded = FloatBuffer()
        let panel = FloatBuffer()
        let paddedGradient = FloatBuffer()
        let weightScratch = FloatBuffer()
    }
    private let packedWeights = FloatBuffer()
    private let flippedWeights = FloatBuffer()

    /// How a batch is cut into chunks of whole images.
    struct ChunkPlan: Equatable {
        var imagesPerChunk: Int
        var chunks: Int
        var batch: Int

        /// First image and image count of chunk i.
        func images(_ i: Int) -> (first: Int, count: Int) {
            let first = i * imagesPerChunk
            return (first, min(imagesPerChunk, batch - first))
        }

        /// Contiguous share `part` of `parts` of 0..<count.
        static func share(_ part: Int, of parts: Int, count: Int) -> Range<Int> {
            count * part / parts..<count * (part + 1) / parts
        }
    }

    public init(inChannels: Int, outChannels: Int, height: Int, width: Int, kernel: Int, padding: Int,
                inputIsImageMajor: Bool = false) {
        geometry = ConvGeometry(channels: inChannels, height: height, width: width, kernel: kernel, padding: padding)
        self.outChannels = outChannels
        self.inputIsImageMajor = inputIsImageMajor
    }

    public var inputSize: Int { geometry.channels * geometry.planeSize }
    public var outputSize: Int { outChannels * geometry.outPlaneSize }
    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [outChannels, geometry.channels, geometry.kernel, geometry.kernel]),
         ParameterSpec(name: "bias", shape: [outChannels])]
    }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        gradWeight = gradients[0]; gradBias = gradients[1]
    }

    private func strides(_ batch: Int) -> PlaneStrides {
        inputIsImageMajor ? .imageMajor(geometry) : .channelMajor(geometry, batch: batch)
    }

    func plan(_ batch: Int) -> ChunkPlan {
        let most = max(1, min(batch, chunkFloats / (geometry.patchSize * geometry.outPlaneSize)))
        var chunks = (batch + most - 1) / most
        let groups = Conv2D.weightGroups
        if chunks > 1 { chunks = min(batch, (chunks + groups - 1) / groups * groups) }
        let per = (batch + chunks - 1) / chunks
        return ChunkPlan(imagesPerChunk: per, chunks: (batch + per - 1) / per, batch: batch)
    }

    /// Threads that will take chunks, each with its buffers sized for one chunk (grown before the parallel
    /// part: the buffers are not grown from inside it).
    private func prepareWorkspaces(_ threads: Int, plan: ChunkPlan) {
        while workspaces.count < threads { workspaces.append(Workspace()) }
        let colFloats = geometry.patchSize * plan.imagesPerChunk * geometry.outPlaneSize
        let padFloats = Im2Col.paddedCount(geometry: geometry, batch: plan.imagesPerChunk)
        for w in workspaces.prefix(threads) {
            _ = w.col.reserve(colFloats)
            _ = w.padded.reserve(padFloats)
        }
    }

    /// The Winograd path when `winogradISA` takes this layer.
    private var winograd: WinogradConvolution? {
        if winogradPath?.isa != winogradISA {
            winogradPath = (winogradISA, WinogradConvolution(geometry: geometry, outChannels: outChannels, isa: winogradISA))
        }
        return winogradPath?.path
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        input = x
        let plane = geometry.outPlaneSize, columns = batch * plane, patch = geometry.patchSize
        let plan = plan(batch), s = strides(batch)
        if let winograd {
            let y = output.reserve(outChannels * columns)
            winograd.forward(x, weight: weight, bias: bias, batch: batch, strides: s, plan: plan, into: y)
            return UnsafePointer(y)
        }
        let threads = min(Parallel.threads, plan.chunks)
        prepareWorkspaces(threads, plan: plan)
        let y = output.reserve(outChannels * columns)
        if var shape = directShape(plan.imagesPerChunk) {
            let isa = Int32(directISA)
            let packed = packedWeights.reserve(ddk_conv_packed_weights_floats(&shape, isa))
            ddk_conv_pack_weights(weight, &shape, isa, packed)
            let panelFloats = ddk_conv_workspace_floats(&shape, isa)
            for w in workspaces.prefix(threads) { _ = w.panel.reserve(panelFloats) }
            let template = shape
            Parallel.forParts(threads) { t in
                let w = workspaces[t]
                var chunk = template
                for i in ChunkPlan.share(t, of: threads, count: plan.chunks) {
                    let (n0, count) = plan.images(i)
                    let source = directInput(x, batch: batch, first: n0, count: count, strides: s, workspace: w, shape: &chunk)
                    ddk_conv_forward(source, packed, bias, &chunk, isa, y + n0 * plane, columns, w.panel.pointer)
                }
            }
            return UnsafePointer(y)
        }
        Parallel.forParts(threads) { t in
            let w = workspaces[t]
            for i in ChunkPlan.share(t, of: threads, count: plan.chunks) {
                let (n0, count) = plan.images(i)
                let width = count * plane
                unfold(x + n0 * s.image, strides: s, batch: count, workspace: w)
                BLAS.serialGemm(transA: false, transB: false, m: outChannels, n: width, k: patch,
                                a: weight, lda: patch, b: w.col.pointer, ldb: width, c: y + n0 * plane, ldc: columns)
                Elementwise.addRowBias(y + n0 * plane, bias: bias, rows: outChannels, length: width, stride: columns)
            }
        }
        return UnsafePointer(y)
    }

    /// The direct kernel's description of a chunk of `images`, when `directISA` handles this layer.
    private func directShape(_ images: Int) -> ddk_conv_shape? {
        guard directISA > 0, geometry.stride == 1 else { return nil }
        let hp = geometry.height + 2 * geometry.padding, wp = geometry.width + 2 * geometry.padding
        var shape = ddk_conv_shape(channel_stride: images * hp * wp, channels: Int32(geometry.channels), images: Int32(images),
                                   padded_h: Int32(hp), padded_w: Int32(wp), kernel: Int32(geometry.kernel),
                                   out_channels: Int32(outChannels))
        return ddk_conv_supports(&shape, Int32(directISA)) != 0 ? shape : nil
    }

    /// Chunk `first..<first+count` as the direct kernels read it — in place when the input is channel-major
    /// without a border, else the workspace's bordered copy — with `shape` set to match.
    private func directInput(_ x: UnsafePointer<Float>, batch: Int, first: Int, count: Int, strides s: PlaneStrides,
                             workspace w: Workspace, shape: inout ddk_conv_shape) -> UnsafePointer<Float> {
        shape.images = Int32(count)
        if geometry.padding == 0 && !inputIsImageMajor {
            shape.channel_stride = batch * geometry.planeSize
            return x + first * s.image
        }
        shape.channel_stride = Im2Col.paddedCount(geometry: geometry, batch: count) / geometry.channels
        Im2Col.pad(x + first * s.image, strides: s, geometry: geometry, batch: count, into: w.padded.pointer)
        return UnsafePointer(w.padded.pointer)
    }

    /// The direct dW kernel's chunk description (and scratch sized for it), when it handles this layer.
    private func weightGradientShape(_ images: Int, threads: Int) -> (ddk_conv_shape, Int32)? {
        guard var shape = directShape(images) else { return nil }
        let isa = Int32(directISA)
        guard ddk_conv_weight_grad_supports(&shape, isa) != 0 else { return nil }
        let floats = ddk_conv_weight_grad_workspace_floats(&shape, isa)
        for w in workspaces.prefix(threads) { _ = w.weightScratch.reserve(floats) }
        return (shape, isa)
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Conv2D.backward before forward") }
        let plane = geometry.outPlaneSize, columns = batch * plane, patch = geometry.patchSize
        let plan = plan(batch), s = strides(batch)
        let dx = needInputGradient ? gradInput.reserve(batch * inputSize) : nil
        let accumulate = accumulatesGradients
        Parallel.forRanges(outChannels, work: outChannels * columns) { r in
            Elementwise.rowSums(gradOutput + r.lowerBound * columns, rows: r.count, length: columns, into: gradBias + r.lowerBound,
                                accumulate: accumulate)
        }
        if let winograd {
            winograd.backward(x, gradOutput: gradOutput, batch: batch, strides: s, plan: plan, dx: dx, gradWeight: gradWeight,
                              accumulate: accumulate)
            return dx.map { UnsafePointer($0) }
        }
        let groups = min(Conv2D.weightGroups, plan.chunks)
        let threads = min(Parallel.threads, groups)
        prepareWorkspaces(threads, plan: plan)
        let weightCount = outChannels * patch
        let partial = groups > 1 ? partialWeights.reserve(groups * weightCount) : gradWeight!
        let transposed = dx == nil ? nil : transposedShape(plan.imagesPerChunk, threads: threads)
        let weightDirect = weightGradientShape(plan.imagesPerChunk, threads: threads)
        Parallel.forParts(threads) { t in
            let w = workspaces[t]
            for g in ChunkPlan.share(t, of: threads, count: groups) {
                for (j, i) in ChunkPlan.share(g, of: groups, count: plan.chunks).enumerated() {
                    let (n0, count) = plan.images(i)
                    let width = count * plane, dy = gradOutput + n0 * plane
                    if let dx, let (shape, isa) = transposed {
                        transposedConvolution(dy, batch: batch, images: count, shape: shape, isa: isa, workspace: w,
                                              into: dx + n0 * s.image)
                    }
                    // dW_group (+)= dY_chunk · col_chunkᵀ. With one group it is the arena's dW itself, which an
                    // accumulating pass adds to from its first chunk on.
                    let add = j > 0 || (accumulate && groups == 1)
                    if let (shape, isa) = weightDirect {
                        var chunk = shape
                        let source = directInput(x, batch: batch, first: n0, count: count, strides: s, workspace: w, shape: &chunk)
                        ddk_conv_weight_grad(source, dy, columns, &chunk, isa, partial + g * weightCount, add ? 1 : 0,
                                             w.weightScratch.pointer)
                    } else {
                        unfold(x + n0 * s.image, strides: s, batch: count, workspace: w)
                        BLAS.serialGemm(transA: false, transB: true, m: outChannels, n: patch, k: width,
                                        a: dy, lda: columns, b: w.col.pointer, ldb: width,
                                        beta: add ? 1 : 0, c: partial + g * weightCount, ldc: patch)
                    }
                    guard let dx, transposed == nil else { continue }
                    // dcol = Wᵀ · dY_chunk overwrites the chunk's columns, which dW no longer needs.
                    BLAS.serialGemm(transA: true, transB: false, m: patch, n: width, k: outChannels,
                                    a: weight, lda: patch, b: dy, ldb: columns, c: w.col.pointer, ldc: width)
                    fold(strides: s, batch: count, workspace: w, into: dx + n0 * s.image)
                }
            }
        }
        if groups > 1 {
            let dW = gradWeight!
            Parallel.forRanges(weightCount, work: groups * weightCount) { r in
                for e in r {
                    var sum = partial[e]
                    for g in 1..<groups { sum += partial[g * weightCount + e] }
                    dW[e] = accumulate ? dW[e] + sum : sum
                }
            }
        }
        return dx.map { UnsafePointer($0) }
    }

    /// For a "same" convolution (2p = k − 1) the input gradient is itself such a convolution, of dY with the
    /// flipped, transposed kernel — dx[c][y][x] = Σ_o Σ_ij W[o][c][k−1−i][k−1−j] · dY[o][y+i−p][x+j−p] — so the
    /// direct forward kernel computes it without dcol and col2im. Packs those weights and sizes the buffers.
    private func transposedShape(_ images: Int, threads: Int) -> (ddk_conv_shape, Int32)? {
        let k = geometry.kernel, p = geometry.padding
        guard directISA > 0, !inputIsImageMajor, 2 * p == k - 1, geometry.stride == 1 else { return nil }
        let isa = Int32(directISA)
        let hp = geometry.outHeight + 2 * p, wp = geometry.outWidth + 2 * p
        var shape = ddk_conv_shape(channel_stride: images * hp * wp, channels: Int32(outChannels), images: Int32(images),
                                   padded_h: Int32(hp), padded_w: Int32(wp), kernel: Int32(k),
                                   out_channels: Int32(geometry.channels))
        guard ddk_conv_supports(&shape, isa) != 0 else { return nil }
        let cin = geometry.channels, taps = k * k
        let flipped = flippedWeights.reserve(cin * outChannels * taps)
        for c in 0..<cin {
            for o in 0..<outChannels {
                let src = weight + (o * cin + c) * taps, dst = flipped + (c * outChannels + o) * taps
                for t in 0..<taps { dst[t] = src[taps - 1 - t] }
            }
        }
        ddk_conv_pack_weights(flipped, &shape, isa, packedWeights.reserve(ddk_conv_packed_weights_floats(&shape, isa)))
        let panelFloats = ddk_conv_workspace_floats(&shape, isa), paddedFloats = outChannels * images * hp * wp
        for w in workspaces.prefix(threads) {
            _ = w.panel.reserve(panelFloats)
            _ = w.paddedGradient.reserve(paddedFloats)
        }
        return (shape, isa)
    }

    /// dx of one chunk of `images` by the direct kernel (see `transposedShape`): dY's planes get the same
    /// zero border as the input had, and the output lands in the channel-major input gradient.
    private func transposedConvolution(_ dy: UnsafePointer<Float>, batch: Int, images: Int, shape: ddk_conv_shape, isa: Int32,
                                       workspace w: Workspace, into dx: UnsafeMutablePointer<Float>) {
        let out = ConvGeometry(channels: outChannels, height: geometry.outHeight, width: geometry.outWidth,
                               kernel: geometry.kernel, padding: geometry.padding)
        Im2Col.pad(dy, strides: .channelMajor(out, batch: batch), geometry: out, batch: images, into: w.paddedGradient.pointer)
        var chunk = shape
        chunk.images = Int32(images)
        chunk.channel_stride = images * Int(shape.padded_h * shape.padded_w)
        ddk_conv_forward(w.paddedGradient.pointer, packedWeights.pointer, nil, &chunk, isa, dx, batch * geometry.planeSize,
                         w.panel.pointer)
    }

    /// im2col of `batch` images into the workspace's columns, through its zero-bordered copy (no bounds
    /// checks per row; a Conv2D has stride 1).
    private func unfold(_ x: UnsafePointer<Float>, strides s: PlaneStrides, batch: Int, workspace w: Workspace) {
        Im2Col.pad(x, strides: s, geometry: geometry, batch: batch, into: w.padded.pointer)
        Im2Col.forwardPadded(w.padded.pointer, geometry: geometry, batch: batch, into: w.col.pointer)
    }

    /// col2im of the workspace's columns into `batch` images' (overwritten) input gradient.
    private func fold(strides s: PlaneStrides, batch: Int, workspace w: Workspace, into dx: UnsafeMutablePointer<Float>) {
        Im2Col.backwardPadded(w.col.pointer, geometry: geometry, batch: batch, into: w.padded.pointer)
        Im2Col.unpad(w.padded.pointer, strides: s, geometry: geometry, batch: batch, into: dx)
    }
}
