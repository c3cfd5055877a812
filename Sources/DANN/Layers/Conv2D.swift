/// k×k convolution as im2col + one GEMM over the whole batch. Output is channel-major [Cout][N][OH][OW]
/// so the GEMM writes it directly; the input may be image-major (data) or channel-major (previous layer).
public final class Conv2D: Layer {
    public let geometry: ConvGeometry
    public let outChannels: Int
    public let inputIsImageMajor: Bool
    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var gradWeight: UnsafeMutablePointer<Float>!
    private var gradBias: UnsafeMutablePointer<Float>!
    private let col = FloatBuffer()       // im2col of the last input; reused for dcol in backward
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

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        let columns = batch * geometry.outPlaneSize
        let colPtr = col.reserve(geometry.patchSize * columns)
        let y = output.reserve(outChannels * columns)
        Im2Col.forward(input, strides: strides(batch), geometry: geometry, batch: batch, into: colPtr)
        BLAS.gemm(transA: false, transB: false, m: outChannels, n: columns, k: geometry.patchSize,
                  a: weight, lda: geometry.patchSize, b: colPtr, ldb: columns, c: y, ldc: columns)
        Elementwise.addRowBias(y, bias: bias, rows: outChannels, length: columns)
        return UnsafePointer(y)
    }

    public func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        let columns = batch * geometry.outPlaneSize
        // dW = dY · colᵀ
        BLAS.gemm(transA: false, transB: true, m: outChannels, n: geometry.patchSize, k: columns,
                  a: gradOutput, lda: columns, b: col.pointer, ldb: columns, c: gradWeight, ldc: geometry.patchSize)
        Elementwise.rowSums(gradOutput, rows: outChannels, length: columns, into: gradBias)
        guard needInputGradient else { return nil }
        // dcol = Wᵀ · dY overwrites the column buffer, which dW no longer needs.
        BLAS.gemm(transA: true, transB: false, m: geometry.patchSize, n: columns, k: outChannels,
                  a: weight, lda: geometry.patchSize, b: gradOutput, ldb: columns, c: col.pointer, ldc: columns)
        let dx = gradInput.reserve(batch * inputSize)
        Im2Col.backward(col.pointer, strides: strides(batch), geometry: geometry, batch: batch, into: dx)
        return UnsafePointer(dx)
    }
}
