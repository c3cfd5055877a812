/// A DANN: extractor E, label classifier C, and domain classifier D behind a gradient reversal layer,
/// with every parameter in one `ParameterArena`.
///
/// Loss on a global batch of B source and B target images (this process holds a slice of it):
/// `L = mean_s NLL(C(E(xs)), ys) + w · (mean_s NLL(D(E(xs)), 0) + mean_t NLL(D(E(xt)), 1))`, each mean over the
/// global B, so gradients summed over ranks equal the single-process gradient (w: `--domain-weight`).
/// Batch normalisation sees the source and the target rows as two batches (see `BatchNorm`).
public final class DANNModel {
    public let architecture: Architecture
    public let arena: ParameterArena
    public let featureSize: Int
    /// Floats per input image (channels × size × size).
    public let imageSize: Int
    public let extractor: Sequential
    public let classifier: Sequential
    public let gradientReversal: GradientReversal
    public let discriminator: Sequential

    /// Called during backward with each arena range whose gradients are final, in decreasing arena order
    /// (D, then C, then E from its last layer to its first), so reductions can start while backward goes on.
    public var onGradientsReady: ((Range<Int>) -> Void)?
    /// Every batch-normalisation layer with its tensor-name prefix (`E.1`), in arena order.
    public let batchNorms: [(name: String, layer: BatchNorm)]
    private var parameterRanges: [ObjectIdentifier: Range<Int>] = [:]
    /// The layers with parameters, whose backward `computeGradients(accumulate:)` switches to adding.
    private var accumulatingLayers: [GradientAccumulating] = []

    private let featureGrad = FloatBuffer()
    private let labelGrad = FloatBuffer()
    private let domainGrad = FloatBuffer()
    private let domainTargets = AlignedBuffer<Int32>()
    private let rowKeys = AlignedBuffer<UInt64>()

    /// One process's slice of one pass of a global step: `images` holds its source rows, then its target rows.
    /// Without gradient accumulation a step is one pass, and `passBatch` equals `globalBatch`.
    public struct Batch {
        public var images: UnsafePointer<Float>
        public var labels: UnsafePointer<Int32>
        public var sourceCount: Int
        public var targetCount: Int
        /// Source (and target) images per optimizer step over all processes and passes (K·B): losses are means
        /// over it, and target sample j of the step is keyed `globalBatch + j`.
        public var globalBatch: Int
        /// Where this slice starts among the step's `globalBatch` images (keys the dropout masks).
        public var sliceOffset: Int
        /// Source (and target) images of this pass over all processes (B): batch norm's statistics are theirs.
        public var passBatch: Int

        public init(images: UnsafePointer<Float>, labels: UnsafePointer<Int32>, sourceCount: Int, targetCount: Int,
                    globalBatch: Int, sliceOffset: Int = 0, passBatch: Int? = nil) {
            self.images = images
            self.labels = labels
            self.sourceCount = sourceCount
            self.targetCount = targetCount
            self.globalBatch = globalBatch
            self.sliceOffset = sliceOffset
            self.passBatch = passBatch ?? globalBatch
        }
    }

    /// This slice's share of the step's losses (already divided by the global B) and correct counts.
    public struct StepResult: Equatable {
        public var labelLoss = 0.0
        public var domainLoss = 0.0
        public var labelCorrect = 0
        public var domainCorrect = 0
    }

    /// Builds the layers and their parameter arena (`arenaStorage`: where the arena lives, as
    /// `ParameterArena.init(_:storage:)` takes it).
    public init(architecture: Architecture, dropout: Float = 0.5,
                arenaStorage: ParameterArena.Storage? = nil) throws {
        guard case .conv = architecture.extractor.first else {
            throw DANNError("architecture '\(architecture.name)': the extractor must start with a convolution")
        }
        self.architecture = architecture
        imageSize = architecture.inputChannels * architecture.inputSize * architecture.inputSize
        var specs: [(name: String, shape: [Int])] = []
        var layers: [Layer] = []
        var norms: [(name: String, layer: BatchNorm)] = []

        func add(_ layer: Layer, prefix: String, index: Int) {
            layers.append(layer)
            for p in layer.parameterSpecs { specs.append(("\(prefix).\(index).\(p.name)", p.shape)) }
            if let norm = layer as? BatchNorm { norms.append(("\(prefix).\(index)", norm)) }
        }

        // Extractor: spatial layers on channel-major planes, then a flatten before the first flat layer.
        var channels = architecture.inputChannels, height = architecture.inputSize, width = architecture.inputSize
        var flat: Int? = nil
        for (i, spec) in architecture.extractor.enumerated() {
            if flat == nil, spec == .dropout {
                layers.append(Flatten(channels: channels, planeSize: height * width))
                flat = channels * height * width
            }
            switch spec {
            case let .conv(out, kernel, padding):
                let conv = Conv2D(inChannels: channels, outChannels: out, height: height, width: width,
                                  kernel: kernel, padding: padding, inputIsImageMajor: i == 0)
                add(conv, prefix: "E", index: i)
                (channels, height, width) = (out, conv.geometry.outHeight, conv.geometry.outWidth)
            case .relu:
                add(ReLU(size: flat ?? channels * height * width), prefix: "E", index: i)
            case let .maxPool(kernel, stride, padding):
                let pool = MaxPool(channels: channels, height: height, width: width, kernel: kernel, stride: stride, padding: padding)
                add(pool, prefix: "E", index: i)
                (height, width) = (pool.geometry.outHeight, pool.geometry.outWidth)
            case .dropout:
                add(Dropout(size: flat!, rate: dropout), prefix: "E", index: i)
            case .dropout2d:
                guard flat == nil else { throw DANNError("architecture '\(architecture.name)': dropout2d needs planes, not flat features") }
                add(Dropout2d(channels: channels, plane: height * width, rate: dropout), prefix: "E", index: i)
            case .batchNorm:
                let layout: BatchNorm.Layout = flat == nil ? .channelMajor(plane: height * width) : .rows
                add(BatchNorm(channels: flat ?? channels, layout: layout), prefix: "E", index: i)
            case .linear:
                throw DANNError("architecture '\(architecture.name)': linear layers belong to the classifiers")
            }
        }
        if flat == nil {
            layers.append(Flatten(channels: channels, planeSize: height * width))
            flat = channels * height * width
        }
        featureSize = flat!
        extractor = Sequential(layers)
        extractor.fuseReLUIntoPooling()

        func head(_ spec: [LayerSpec], prefix: String, classes: Int) throws -> Sequential {
            layers = []
            var size = flat!
            for (i, s) in spec.enumerated() {
                switch s {
                case let .linear(out):
                    add(Linear(inputSize: size, outputSize: out), prefix: prefix, index: i)
                    size = out
                case .relu: add(ReLU(size: size), prefix: prefix, index: i)
                case .dropout: add(Dropout(size: size, rate: dropout), prefix: prefix, index: i)
                case .batchNorm: add(BatchNorm(channels: size, layout: .rows), prefix: prefix, index: i)
                default: throw DANNError("architecture '\(architecture.name)': \(prefix) may hold linear, batchNorm, relu and dropout only")
                }
            }
            guard size == classes else {
                throw DANNError("architecture '\(architecture.name)': \(prefix) ends with \(size) outputs, expected \(classes)")
            }
            return Sequential(layers)
        }
        classifier = try head(architecture.classifier, prefix: "G_c", classes: 10)
        gradientReversal = GradientReversal(size: featureSize)
        discriminator = try head(architecture.discriminator, prefix: "G_d", classes: 2)

        arena = try ParameterArena(specs, storage: arenaStorage)
        batchNorms = norms
        var offset = 0
        for layer in extractor.layers + classifier.layers + discriminator.layers {
            let ps = layer.parameterSpecs
            guard !ps.isEmpty else { continue }
            var params: [UnsafeMutablePointer<Float>] = []
            var grads: [UnsafeMutablePointer<Float>] = []
            for p in ps {
                params.append(arena.parameters + offset)
                grads.append(arena.gradients + offset)
                offset += p.count
            }
            layer.bind(parameters: params, gradients: grads)
            guard let accumulating = layer as? GradientAccumulating else {
                preconditionFailure("\(type(of: layer)) has parameters but cannot accumulate their gradients")
            }
            accumulatingLayers.append(accumulating)
            parameterRanges[ObjectIdentifier(layer)] = (offset - ps.reduce(0) { $0 + $1.count })..<offset
        }
    }

    public var parameterCount: Int { arena.count }

    /// Fresh weights (the preset's initialisation; batch normalisation starts as PyTorch's: γ = 1, β = 0,
    /// running mean 0, running variance 1).
    public func initialize(seed: UInt64) {
        architecture.initialization.apply(to: arena, seed: seed)
        for (name, norm) in batchNorms {
            if let weight = arena.entry("\(name).weight") { arena.parameter(weight).update(repeating: 1) }
            if let bias = arena.entry("\(name).bias") { arena.parameter(bias).update(repeating: 0) }
            norm.resetRunningStatistics()
        }
    }

    /// Makes batch normalisation use statistics of the global batch: its per-channel sums are summed over
    /// `communicator`'s ranks (a collective inside every training forward and backward).
    public func shareBatchStatistics(over communicator: Communicator) {
        let reduce: ((UnsafeMutablePointer<Double>, Int) -> Void)? =
            communicator.size > 1 ? { communicator.allreduceSum($0, count: $1) } : nil
        for (_, norm) in batchNorms { norm.reduceSums = reduce }
    }

    /// Copies rank `root`'s running statistics to every rank (after loading a checkpoint there).
    public func broadcastRunningStatistics(over communicator: Communicator, root: Int = 0) {
        guard communicator.size > 1 else { return }
        for (_, norm) in batchNorms {
            communicator.broadcast(norm.runningBuffers.pointer, bytes: 2 * norm.channels * 4, root: root)
            var tracked = norm.batchesTracked
            communicator.broadcast(&tracked, bytes: 8, root: root)
            norm.batchesTracked = tracked
        }
    }

    /// Forward and backward over one slice: fills the gradient arena (this slice's share of ∂L/∂θ) and
    /// returns its losses. With `sourceOnly` the domain terms are dropped and D's gradients are zero.
    /// With `accumulate` the slice's gradient is added to what the arena holds (a later pass of a step under
    /// `--accumulate`); otherwise it replaces it.
    @discardableResult
    public func computeGradients(_ batch: Batch, lambda: Float, step: Int, seed: UInt64, sourceOnly: Bool = false,
                                 domainWeight: Float = 1, accumulate: Bool = false) -> StepResult {
        let ns = batch.sourceCount
        let n = sourceOnly ? ns : ns + batch.targetCount
        let scale = 1 / Float(batch.globalBatch)
        prepareRows(batch, rows: n)
        gradientReversal.lambda = lambda
        for layer in accumulatingLayers { layer.accumulatesGradients = accumulate }
        var result = StepResult()

        // Batch norm normalises by the pass's rows: with accumulation, each pass by its own statistics.
        let b = batch.passBatch
        let context = ForwardContext(training: true, seed: seed, step: step, rowKeys: rowKeys.pointer,
                                     domains: DomainSplit(localSource: ns, globalSource: b, globalTarget: sourceOnly ? 0 : b))
        let sourceContext = ForwardContext(training: true, seed: seed, step: step, rowKeys: rowKeys.pointer,
                                           domains: DomainSplit(localSource: ns, globalSource: b, globalTarget: 0))
        let features = extractor.forward(batch.images, batch: n, context: context)
        let dFeatures = featureGrad.reserve(n * featureSize)

        if sourceOnly {
            // An earlier pass already zeroed D's gradients; adding zero is leaving them.
            if !accumulate { zeroGradients(prefix: "G_d.") }
            discriminator.layers.reversed().forEach(reportReady)
        } else {
            let logits = discriminator.forward(gradientReversal.forward(features, batch: n, context: context), batch: n, context: context)
            let dLogits = domainGrad.reserve(n * 2)
            result.domainLoss = LogSoftmaxNLL.forwardBackward(
                logits: logits, targets: domainTargets.pointer, rows: n, classes: 2, scale: scale,
                grad: dLogits, correct: &result.domainCorrect)
            // The weight scales D's loss and so every gradient it sends (the reported loss stays unweighted).
            if domainWeight != 1 { Elementwise.scale(dLogits, by: domainWeight, into: dLogits, count: n * 2) }
            let dReversed = discriminator.backward(dLogits, batch: n, needInputGradient: true, afterLayer: reportReady)!
            dFeatures.update(from: gradientReversal.backward(dReversed, batch: n, needInputGradient: true)!, count: n * featureSize)
        }

        if ns > 0 {
            // With batch norm, C also sees the target rows (as a PyTorch model called on the target batch does):
            // they carry no loss, but they put target statistics into C's running statistics, which evaluation
            // on the target uses. Per-domain normalisation keeps them out of the source rows' gradient, so their
            // own gradient is zero throughout C and its backward runs over the source rows alone (as autograd
            // skips a forward that feeds no loss): a third less work in `seed-bn`'s widest layers.
            let rows = batchNorms.isEmpty || sourceOnly ? ns : n
            let logits = classifier.forward(features, batch: rows, context: rows == ns ? sourceContext : context)
            let dLogits = labelGrad.reserve(ns * 10)
            result.labelLoss = LogSoftmaxNLL.forwardBackward(logits: logits, targets: batch.labels, rows: ns, classes: 10,
                                                             scale: scale, grad: dLogits, correct: &result.labelCorrect)
            let dClassifier = classifier.backward(dLogits, batch: ns, needInputGradient: true, afterLayer: reportReady)!
            if sourceOnly {
                dFeatures.update(from: dClassifier, count: ns * featureSize)
            } else {
                Elementwise.add(dClassifier, into: dFeatures, count: ns * featureSize)
            }
        } else {
            if !accumulate { zeroGradients(prefix: "G_c.") }
            classifier.layers.reversed().forEach(reportReady)
            if sourceOnly { dFeatures.update(repeating: 0, count: n * featureSize) }
        }
        extractor.backward(dFeatures, batch: n, needInputGradient: false, afterLayer: reportReady)
        return result
    }

    /// Label logits [count × 10] for `count` images (inference: no dropout). Valid until the next call.
    public func classify(_ images: UnsafePointer<Float>, count: Int) -> UnsafePointer<Float> {
        classifier.forward(extractor.forward(images, batch: count, context: .inference), batch: count, context: .inference)
    }

    private func reportReady(_ layer: Layer) {
        guard let callback = onGradientsReady, let range = parameterRanges[ObjectIdentifier(layer)] else { return }
        callback(range)
    }

    private func prepareRows(_ batch: Batch, rows n: Int) {
        let targets = domainTargets.reserve(n), keys = rowKeys.reserve(n)
        for i in 0..<n {
            let isTarget = i >= batch.sourceCount
            targets[i] = isTarget ? 1 : 0
            // Source sample j of the global batch is keyed j, target sample j is keyed B + j.
            let local = isTarget ? i - batch.sourceCount : i
            keys[i] = UInt64((isTarget ? batch.globalBatch : 0) + batch.sliceOffset + local)
        }
    }

    private func zeroGradients(prefix: String) {
        for entry in arena.entries where entry.name.hasPrefix(prefix) {
            arena.gradient(entry).update(repeating: 0)
        }
    }
}
