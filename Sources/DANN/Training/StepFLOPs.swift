/// The arithmetic of one DANN training step, counted analytically from the architecture: the matrix
/// products only (a multiply-add is 2 FLOPs), as is usual for GFLOP/s figures; the elementwise work
/// (bias, ReLU, pooling, dropout, loss, optimizer) is a few operations per activation or parameter and
/// is left out.
public struct StepFLOPs: Equatable, Sendable {
    /// Forward and backward of the extractor over B source + B target images (the first convolution
    /// computes no input gradient).
    public var extractorForward: Double
    public var extractorBackward: Double
    /// The label classifier over B source images and the domain classifier over 2B images, forward and
    /// backward (weight and input gradients).
    public var headsForward: Double
    public var headsBackward: Double

    public var total: Double { extractorForward + extractorBackward + headsForward + headsBackward }

    /// Counts for a global batch of `batch` source and `batch` target images (the full DANN loss).
    public init(architecture a: Architecture, batch: Int) {
        let images = Double(2 * batch)
        // Multiply-adds per image of each weighted layer of E, walking the shapes as DANNModel does.
        var channels = a.inputChannels, height = a.inputSize, width = a.inputSize
        var convMACs: [Double] = []
        var features = 0
        for spec in a.extractor {
            switch spec {
            case let .conv(out, kernel, padding):
                let g = ConvGeometry(channels: channels, height: height, width: width, kernel: kernel, padding: padding)
                convMACs.append(Double(out * g.outPlaneSize * g.patchSize))
                (channels, height, width) = (out, g.outHeight, g.outWidth)
            case let .maxPool(kernel, stride, padding):
                let g = ConvGeometry(channels: channels, height: height, width: width, kernel: kernel, stride: stride, padding: padding)
                (height, width) = (g.outHeight, g.outWidth)
            case .relu, .dropout, .dropout2d, .batchNorm, .linear:
                break
            }
            features = channels * height * width
        }
        func linearMACs(_ spec: [LayerSpec]) -> Double {
            var size = features, total = 0.0
            for case let .linear(out) in spec {
                total += Double(size * out)
                size = out
            }
            return total
        }
        let convForward = convMACs.reduce(0, +)
        extractorForward = 2 * images * convForward
        extractorBackward = 2 * images * (2 * convForward - (convMACs.first ?? 0))
        let label = linearMACs(a.classifier) * Double(batch)
        let domain = linearMACs(a.discriminator) * images
        headsForward = 2 * (label + domain)
        headsBackward = 2 * headsForward
    }
}
