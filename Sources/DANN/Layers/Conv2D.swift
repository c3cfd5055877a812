/// k×k convolution as im2col + GEMM. Output is channel-major [Cout][N][OH][OW] so the GEMM writes it
/// directly; the input may be image-major (data) or channel-major (previous layer).
///
/// The batch is processed in chunks of whole images whose column matrix fits in cache (`chunkFloats`):
/// a whole-batch column matrix (321 MB for the seed's second conv at 256 images) would be written to and
/// read back from DRAM, while a cache-sized one is consumed by the GEMM while still hot. Backward
/// rebuilds each chunk's columns from the input (which the layer contract keeps alive until the next
/// forward) instead of storing them, and accumulates dW over the chunks.
public final class Conv2D: Layer {
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let inputIsImageMajor: Bool
    /// Upper bound on the floats of one chunk's column matrix (at least one image per chunk). 4 MB measured
    /// best on a 2 MB-L2 core among 0.5–8 MB (the seed's second conv: 3 images per chunk).
    public var chunkFloats = 1 << 20
    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var gradWeight: UnsafeMutablePointer<Float>!
    private var gradBias: UnsafeMutablePointer<Float>!
    private var input: UnsafePointer<Float>?
    private let col = FloatBuffer()       // one chunk's im2col; reused for its dcol in backward
    private let padded = FloatBuffer()    // one chunk's input (or input gradient) with a zero border
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()

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

    /// Images per chunk.
    private func chunkImages(_ batch: Int) -> Int {
        max(1, min(batch, chunkFloats / (geometry.patchSize * geometry.outPlaneSize)))
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        input = x
        let plane = geometry.outPlaneSize, columns = batch * plane, patch = geometry.patchSize
        let step = chunkImages(batch), s = strides(batch)
        let colPtr = col.reserve(patch * step * plane)
        let y = output.reserve(outChannels * columns)
        for n0 in stride(from: 0, to: batch, by: step) {
            let count = min(step, batch - n0), width = count * plane
            unfold(x + n0 * s.image, strides: s, batch: count, into: colPtr)
            BLAS.gemm(transA: false, transB: false, m: outChannels, n: width, k: patch,
                      a: weight, lda: patch, b: colPtr, ldb: width, c: y + n0 * plane, ldc: columns)
            Elementwise.addRowBias(y + n0 * plane, bias: bias, rows: outChannels, length: width, stride: columns)
        }
        return UnsafePointer(y)
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Conv2D.backward before forward") }
        let plane = geometry.outPlaneSize, columns = batch * plane, patch = geometry.patchSize
        let step = chunkImages(batch), s = strides(batch)
        let colPtr = col.reserve(patch * step * plane)
        let dx = needInputGradient ? gradInput.reserve(batch * inputSize) : nil
        Elementwise.rowSums(gradOutput, rows: outChannels, length: columns, into: gradBias)
        for n0 in stride(from: 0, to: batch, by: step) {
            let count = min(step, batch - n0), width = count * plane
            let dy = gradOutput + n0 * plane
            unfold(x + n0 * s.image, strides: s, batch: count, into: colPtr)
            // dW (+)= dY_chunk · col_chunkᵀ
            BLAS.gemm(transA: false, transB: true, m: outChannels, n: patch, k: width,
                      a: dy, lda: columns, b: colPtr, ldb: width,
                      beta: n0 == 0 ? 0 : 1, c: gradWeight, ldc: patch)
            guard let dx else { continue }
            // dcol = Wᵀ · dY_chunk overwrites the chunk's columns, which dW no longer needs.
            BLAS.gemm(transA: true, transB: false, m: patch, n: width, k: outChannels,
                      a: weight, lda: patch, b: dy, ldb: columns, c: colPtr, ldc: width)
            fold(colPtr, strides: s, batch: count, into: dx + n0 * s.image)
        }
        return dx.map { UnsafePointer($0) }
    }

    /// im2col of `batch` images through a zero-bordered copy (no bounds checks per row; a Conv2D has stride 1).
    /// Channels are independent rows of the column matrix, so the threads split them.
    private func unfold(_ x: UnsafePointer<Float>, strides s: PlaneStrides, batch: Int, into colPtr: UnsafeMutablePointer<Float>) {
        splitChannels(batch: batch) { g, c0, pad, colRow in
            Im2Col.pad(x + c0 * s.channel, strides: s, geometry: g, batch: batch, into: pad)
            Im2Col.forwardPadded(pad, geometry: g, batch: batch, into: colPtr + colRow)
        }
    }

    /// col2im of `batch` images into their (overwritten) input gradient, channels split over the threads.
    private func fold(_ colPtr: UnsafePointer<Float>, strides s: PlaneStrides, batch: Int, into dx: UnsafeMutablePointer<Float>) {
        splitChannels(batch: batch) { g, c0, pad, colRow in
            Im2Col.backwardPadded(colPtr + colRow, geometry: g, batch: batch, into: pad)
            Im2Col.unpad(pad, strides: s, geometry: g, batch: batch, into: dx + c0 * s.channel)
        }
    }

    /// Splits the input channels over the threads: `body` gets the geometry of its channels, the first
    /// one, where their zero-bordered planes go, and the offset of their first column-matrix row.
    private func splitChannels(batch: Int, _ body: (ConvGeometry, Int, UnsafeMutablePointer<Float>, Int) -> Void) {
        let pad = padded.reserve(Im2Col.paddedCount(geometry: geometry, batch: batch))
        let paddedPlanes = Im2Col.paddedCount(geometry: geometry, batch: batch) / geometry.channels
        let colRows = geometry.kernel * geometry.kernel * batch * geometry.outPlaneSize
        Parallel.forRanges(geometry.channels, work: geometry.channels * colRows) { channels in
            var g = geometry
            g.channels = channels.count
            let c0 = channels.lowerBound
            body(g, c0, pad + c0 * paddedPlanes, c0 * colRows)
        }
    }
}
