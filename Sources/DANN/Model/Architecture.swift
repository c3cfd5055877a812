/// One entry of a network branch, as in the seed's `nn.Sequential` (its position gives the tensor name).
public enum LayerSpec: Equatable, Sendable {
    case conv(out: Int, kernel: Int, padding: Int)
    case relu
    case maxPool(kernel: Int, stride: Int, padding: Int)
    case dropout
    /// Channel dropout (`nn.Dropout2d`) on the extractor's planes.
    case dropout2d
    /// `nn.BatchNorm2d` on the extractor's planes, `nn.BatchNorm1d` on flat features.
    case batchNorm
    case linear(out: Int)
}

/// The three branches of a DANN: extractor E (images → features), label classifier C and domain classifier D
/// (behind the gradient reversal layer). Tensor names are `E.<i>`, `G_c.<i>`, `G_d.<i>` by position.
public struct Architecture: Equatable, Sendable {
    public var name: String
    public var inputChannels: Int
    public var inputSize: Int
    public var extractor: [LayerSpec]
    public var classifier: [LayerSpec]
    public var discriminator: [LayerSpec]
    public var initialization: Initialization = .seed

    /// The seed repository's network (SVHN→MNIST reproduction): 33,372,108 parameters, 6272 features.
    public static let seed = Architecture(
        name: "seed", inputChannels: 3, inputSize: 28,
        extractor: [.conv(out: 64, kernel: 5, padding: 2), .relu, .maxPool(kernel: 3, stride: 2, padding: 1),
                    .conv(out: 64, kernel: 5, padding: 2), .relu, .maxPool(kernel: 3, stride: 2, padding: 1),
                    .conv(out: 128, kernel: 5, padding: 2), .relu, .dropout],
        classifier: [.linear(out: 3072), .relu, .linear(out: 2048), .relu, .linear(out: 10)],
        discriminator: [.linear(out: 1024), .relu, .linear(out: 1024), .relu, .linear(out: 2)])

    /// The DANN paper's MNIST→MNIST-M network: 768 features.
    public static let small = Architecture(
        name: "small", inputChannels: 3, inputSize: 28,
        extractor: [.conv(out: 32, kernel: 5, padding: 0), .relu, .maxPool(kernel: 2, stride: 2, padding: 0),
                    .conv(out: 48, kernel: 5, padding: 0), .relu, .maxPool(kernel: 2, stride: 2, padding: 0)],
        classifier: [.linear(out: 100), .relu, .linear(out: 100), .relu, .linear(out: 10)],
        discriminator: [.linear(out: 100), .relu, .linear(out: 2)],
        initialization: .pytorchDefault)

    /// `small` with batch normalisation after each convolution and hidden linear layer, and channel dropout
    /// after the second convolution block (the recipe of the public DANN results at 84–91 % on MNIST→MNIST-M).
    public static let smallBN = Architecture(
        name: "small-bn", inputChannels: 3, inputSize: 28,
        extractor: [.conv(out: 32, kernel: 5, padding: 0), .batchNorm, .relu, .maxPool(kernel: 2, stride: 2, padding: 0),
                    .conv(out: 48, kernel: 5, padding: 0), .batchNorm, .relu, .maxPool(kernel: 2, stride: 2, padding: 0),
                    .dropout2d],
        classifier: [.linear(out: 100), .batchNorm, .relu, .linear(out: 100), .batchNorm, .relu, .linear(out: 10)],
        discriminator: [.linear(out: 100), .batchNorm, .relu, .linear(out: 2)],
        initialization: .pytorchDefault)

    /// `seed` with batch normalisation after each convolution and hidden linear layer.
    public static let seedBN = Architecture(
        name: "seed-bn", inputChannels: 3, inputSize: 28,
        extractor: [.conv(out: 64, kernel: 5, padding: 2), .batchNorm, .relu, .maxPool(kernel: 3, stride: 2, padding: 1),
                    .conv(out: 64, kernel: 5, padding: 2), .batchNorm, .relu, .maxPool(kernel: 3, stride: 2, padding: 1),
                    .conv(out: 128, kernel: 5, padding: 2), .batchNorm, .relu, .dropout2d],
        classifier: [.linear(out: 3072), .batchNorm, .relu, .linear(out: 2048), .batchNorm, .relu, .linear(out: 10)],
        discriminator: [.linear(out: 1024), .batchNorm, .relu, .linear(out: 1024), .batchNorm, .relu, .linear(out: 2)],
        initialization: .pytorchDefault)

    public static let presets: [Architecture] = [.seed, .small, .smallBN, .seedBN]

    public static func named(_ name: String) throws -> Architecture {
        guard let arch = presets.first(where: { $0.name == name }) else {
            throw DANNError("unknown architecture '\(name)' (expected one of: \(presets.map(\.name).joined(separator: ", ")))")
        }
        return arch
    }

    /// The same network on a different input size (e.g. `--input-size 32`).
    /// Input sides the networks are defined for (28: MNIST's own; 32: SVHN's and MNIST-M's).
    public static let inputSizes = [28, 32]

    public func withInputSize(_ size: Int) -> Architecture {
        var copy = self
        copy.inputSize = size
        return copy
    }
}
