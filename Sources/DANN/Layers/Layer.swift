/// A parameter tensor a layer owns: its name within the layer ("weight", "bias") and PyTorch shape.
public struct ParameterSpec: Equatable, Sendable {
    public var name: String
    public var shape: [Int]
    public var count: Int { shape.reduce(1, *) }
}

/// Which rows of a batch come from which domain, here and over all ranks. Batch normalisation normalises
/// each domain by its own statistics (as PyTorch does when source and target go through the network in
/// separate calls), computed over the whole global batch.
public struct DomainSplit: Equatable, Sendable {
    /// Rows 0 ..< localSource of this process's batch are source rows; the rest are target rows.
    public var localSource: Int
    /// Source and target rows of the global batch (over every rank).
    public var globalSource: Int
    public var globalTarget: Int

    public init(localSource: Int, globalSource: Int, globalTarget: Int) {
        self.localSource = localSource
        self.globalSource = globalSource
        self.globalTarget = globalTarget
    }

    /// A batch that is one domain only, the same on every rank (tests, single-domain training).
    public static func single(rows: Int) -> DomainSplit { DomainSplit(localSource: rows, globalSource: rows, globalTarget: 0) }
}

/// What a forward pass needs besides its input: train or eval, the keys of the stateless dropout RNG,
/// and the domain of each row.
public struct ForwardContext {
    public var training: Bool
    public var seed: UInt64
    public var step: Int
    /// One key per batch row: the sample's position in the global batch (see `DANNModel`).
    public var rowKeys: UnsafePointer<UInt64>?
    /// The rows' domains; nil means one domain held whole by this process.
    public var domains: DomainSplit?

    public init(training: Bool, seed: UInt64 = 0, step: Int = 0, rowKeys: UnsafePointer<UInt64>? = nil,
                domains: DomainSplit? = nil) {
        self.training = training
        self.seed = seed
        self.step = step
        self.rowKeys = rowKeys
        self.domains = domains
    }

    public static var inference: ForwardContext { ForwardContext(training: false) }
}

/// One layer: forward and backward over a batch, parameters bound into the model's arenas.
/// A layer keeps what its backward needs (its input pointer, column buffer, argmax, mask) from the last
/// forward; buffers grow on the first step and are then reused, so steady-state steps allocate nothing.
public protocol Layer: AnyObject {
    /// Floats per sample going in and coming out.
    var inputSize: Int { get }
    var outputSize: Int { get }
    var parameterSpecs: [ParameterSpec] { get }
    /// Points the layer at its slices of the parameter and gradient arenas, one per spec, in order.
    func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>])
    func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float>
    /// Writes the parameter gradients (overwriting: each parameter is used once per pass; see
    /// `GradientAccumulating`) and returns the input gradient, or nil when `needInputGradient` is false.
    /// Layers on rows of features (the heads') also take `batch` smaller than the forward's: the backward of
    /// its first rows, the rest having zero gradient (the label classifier's target rows).
    func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool) -> UnsafePointer<Float>?
}

/// A layer with parameters. Its backward overwrites their gradients, unless `accumulatesGradients` is set: then
/// it adds to what the arena holds, so that several passes sum into one gradient without a second arena
/// (`--accumulate`, docs/design.md §3.11). `DANNModel.computeGradients(accumulate:)` sets it.
public protocol GradientAccumulating: Layer {
    var accumulatesGradients: Bool { get set }
}

extension Layer {
    public var parameterSpecs: [ParameterSpec] { [] }
    public func bind(parameters: [UnsafeMutablePointer<Float>], gradients: [UnsafeMutablePointer<Float>]) {}
}

/// Layers applied in order; backward in reverse.
public struct Sequential {
    public var layers: [Layer]

    public init(_ layers: [Layer]) { self.layers = layers }

    /// ReLU then max pooling equals max pooling then ReLU (max commutes with a monotone function), on a
    /// quarter (2×2) or so of the elements; and the ReLU's gradient gate becomes "the window's max was
    /// positive", which the pooling backward applies as it routes each gradient. Outputs and gradients
    /// are unchanged (a window whose max is ≤ 0 passes no gradient either way), and the two full passes
    /// of the ReLU over the convolution's output disappear.
    public func fuseReLUIntoPooling() {
        for (relu, pool) in zip(layers, layers.dropFirst()) {
            guard let relu = relu as? ReLU, let pool = pool as? MaxPool else { continue }
            relu.deferredToPooling = true
            pool.rectifies = true
        }
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, context: ForwardContext) -> UnsafePointer<Float> {
        var x = input
        if let profiler = LayerProfiler.active {
            for layer in layers {
                let start = LayerProfiler.now()
                x = layer.forward(x, batch: batch, context: context)
                profiler.record(layer, forward: true, since: start)
            }
            return x
        }
        for layer in layers { x = layer.forward(x, batch: batch, context: context) }
        return x
    }

    /// Backward through every layer; the first layer's input gradient only if asked for.
    /// `afterLayer` sees each layer once its parameter gradients are final (for overlapping communication).
    @discardableResult
    public func backward(_ gradOutput: UnsafePointer<Float>, batch: Int, needInputGradient: Bool,
                         afterLayer: ((Layer) -> Void)? = nil) -> UnsafePointer<Float>? {
        var g: UnsafePointer<Float>? = gradOutput
        let profiler = LayerProfiler.active
        for (i, layer) in layers.enumerated().reversed() {
            let start = profiler == nil ? 0 : LayerProfiler.now()
            g = layer.backward(g!, batch: batch, needInputGradient: needInputGradient || i > 0)
            profiler?.record(layer, forward: false, since: start)
            afterLayer?(layer)
        }
        return g
    }
}
