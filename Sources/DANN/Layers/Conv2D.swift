/// k×k convolution as im2col + GEMM. Output is channel-major [Cout][N][OH][OW] so the GEMM writes it
/// directly; the input may be image-major (data) or channel-major (previous layer).
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
    }

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

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        input = x
        let plane = geometry.outPlaneSize, columns = batch * plane, patch = geometry.patchSize
        let plan = plan(batch), s = strides(batch)
        let threads = min(Parallel.threads, plan.chunks)
        prepareWorkspaces(threads, plan: plan)
        let y = output.reserve(outChannels * columns)
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

    public func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Conv2D.backward before forward") }
        let plane = geometry.outPlaneSize, columns = batch * plane, patch = geometry.patchSize
        let plan = plan(batch), s = strides(batch)
        let groups = min(Conv2D.weightGroups, plan.chunks)
        let threads = min(Parallel.threads, groups)
        prepareWorkspaces(threads, plan: plan)
        let dx = needInputGradient ? gradInput.reserve(batch * inputSize) : nil
        let weightCount = outChannels * patch
        let partial = groups > 1 ? partialWeights.reserve(groups * weightCount) : gradWeight!
        let accumulate = accumulatesGradients
        Parallel.forRanges(outChannels, work: outChannels * columns) { r in
            Elementwise.rowSums(gradOutput + r.lowerBound * columns, rows: r.count, length: columns, into: gradBias + r.lowerBound,
                                accumulate: accumulate)
        }
        Parallel.forParts(threads) { t in
            let w = workspaces[t]
            for g in ChunkPlan.share(t, of: threads, count: groups) {
                for (j, i) in ChunkPlan.share(g, of: groups, count: plan.chunks).enumerated() {
                    let (n0, count) = plan.images(i)
                    let width = count * plane, dy = gradOutput + n0 * plane
                    unfold(x + n0 * s.image, strides: s, batch: count, workspace: w)
                    // dW_group (+)= dY_chunk · col_chunkᵀ. With one group it is the arena's dW itself, which an
                    // accumulating pass adds to from its first chunk on.
                    BLAS.serialGemm(transA: false, transB: true, m: outChannels, n: patch, k: width,
                                    a: dy, lda: columns, b: w.col.pointer, ldb: width,
                                    beta: j == 0 && !(accumulate && groups == 1) ? 0 : 1, c: partial + g * weightCount, ldc: patch)
                    guard let dx else { continue }
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
