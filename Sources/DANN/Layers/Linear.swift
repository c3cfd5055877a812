/// Fully connected layer on row-major [N][in] batches, weight [out][in] as in PyTorch.
public final class Linear: GradientAccumulating {
    public let inputSize: Int
    public let outputSize: Int
    private var weight: UnsafeMutablePointer<Float>!
    private var bias: UnsafeMutablePointer<Float>!
    private var gradWeight: UnsafeMutablePointer<Float>!
    private var gradBias: UnsafeMutablePointer<Float>!
    private var input: UnsafePointer<Float>?
    private let output = FloatBuffer()
    private let gradInput = FloatBuffer()
    public var accumulatesGradients = false

    public init(inputSize: Int, outputSize: Int) {
        self.inputSize = inputSize
        self.outputSize = outputSize
    }

    public var parameterSpecs: [ParameterSpec] {
        [ParameterSpec(name: "weight", shape: [outputSize, inputSize]), ParameterSpec(name: "bias", shape: [outputSize])]
    }

    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {
        weight = parameters[0]; bias = parameters[1]
        gradWeight = gradients[0]; gradBias = gradients[1]
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        input = x
        let y = output.reserve(batch * outputSize)
        BLAS.gemm(transA: false, transB: true, m: batch, n: outputSize, k: inputSize,
                  a: x, lda: inputSize, b: weight, ldb: inputSize, c: y, ldc: outputSize)
        Elementwise.addColumnBias(y, bias: bias, rows: batch, cols: outputSize)
        return UnsafePointer(y)
    }

    public func backward(_ dy: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>? {
        guard let x = input else { preconditionFailure("Linear.backward before forward") }
        BLAS.gemm(transA: true, transB: false, m: outputSize, n: inputSize, k: batch,
                  a: dy, lda: outputSize, b: x, ldb: inputSize, beta: accumulatesGradients ? 1 : 0, c: gradWeight, ldc: inputSize)
        Elementwise.columnSums(dy, rows: batch, cols: outputSize, into: gradBias, accumulate: accumulatesGradients)
        guard needInputGradient else { return nil }
        let dx = gradInput.reserve(batch * inputSize)
        BLAS.gemm(transA: false, transB: false, m: batch, n: inputSize, k: outputSize,
                  a: dy, lda: outputSize, b: weight, ldb: inputSize, c: dx, ldc: inputSize)
        return UnsafePointer(dx)
    }
}
