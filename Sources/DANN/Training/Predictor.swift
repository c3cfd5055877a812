import Foundation

/// The model's answer for one image.
public struct Prediction: Equatable, Sendable {
    /// The most probable digit (the first one on a tie).
    public var digit: Int
    /// Softmax probabilities of digits 0...9.
    public var probabilities: [Float]

    /// The probability of `digit`.
    public var confidence: Float { probabilities[digit] }
}

/// Classifies arbitrary images the way the training data was fed to the network (docs/design.md §2.2):
///
/// 1. RGB, grey replicated (`ImageReader` already delivers RGB);
/// 2. with `invert`, every sample x ↦ 255 − x (for dark digits on a light background; MNIST is light on dark);
/// 3. fitted to the model's S×S input: an S×S image unchanged; 32×32 at S = 28 centre-cropped by 2 px and
///    28×28 at S = 32 zero-padded by 2 px (exactly as MNIST-M and MNIST are); any other size stretched to
///    S×S by bilinear interpolation (aspect ratio not kept), after halving with 2×2 box averages while the
///    image is at least twice S on both sides, since plain bilinear sampling would skip pixels;
/// 4. scaled to [0, 1] (x / 255) and, for models trained with `--normalize`, mapped to [−1, 1].
///
/// Steps 3's crop/pad and 4 are the training `Preprocessor` itself, so an MNIST or MNIST-M image saved
/// losslessly gets bit-identical inputs.
public final class Predictor {
    public let model: DANNModel
    public let preprocessor: Preprocessor
    /// Images per forward pass.
    public let chunkSize: Int
    private let inputs = FloatBuffer()
    private let logProbabilities = FloatBuffer()

    public init(model: DANNModel, normalize: Bool, chunkSize: Int = 64) {
        self.model = model
        preprocessor = Preprocessor(inputSize: model.architecture.inputSize, normalize: normalize)
        self.chunkSize = max(1, chunkSize)
    }

    /// The S×S (or 32×32 / 28×28 crop-or-pad source) image the preprocessor receives, after inversion.
    public static func fitted(_ image: RGBImage, inputSize s: Int, invert: Bool) -> RGBImage {
        var image = image
        if invert { for i in image.pixels.indices { image.pixels[i] = 255 - image.pixels[i] } }
        let square = image.width == image.height
        if square && (image.width == s || image.width == 28 || image.width == 32) { return image }
        while image.width >= 2 * s && image.height >= 2 * s {
            // Bilinear at exactly half size samples midway between two pixels: a 2×2 box average.
            image = image.resizedBilinear(width: image.width / 2, height: image.height / 2)
        }
        return image.resizedBilinear(width: s, height: s)
    }

    /// What the network sees, as an image: `fitted` with the 32→28 crop or 28→32 pad applied.
    public static func networkView(_ image: RGBImage, inputSize s: Int, invert: Bool) -> RGBImage {
        let fit = fitted(image, inputSize: s, invert: invert)
        guard fit.width != s else { return fit }
        var out = RGBImage(width: s, height: s, fill: .black)
        out.draw(fit, x: (s - fit.width) / 2, y: (s - fit.height) / 2)
        return out
    }

    /// Mean sample value in [0, 1]; above 0.5 the image is probably a dark digit on a light background.
    public static func meanIntensity(_ image: RGBImage) -> Double {
        guard !image.pixels.isEmpty else { return 0 }
        return Double(image.pixels.reduce(0) { $0 + Int($1) }) / Double(image.pixels.count) / 255
    }

    /// The network input of one image: planar 3×S×S floats, as `Preprocessor` makes them from the datasets.
    public func input(for image: RGBImage, invert: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: preprocessor.floatsPerImage)
        out.withUnsafeMutableBufferPointer { write(image, invert: invert, into: $0.baseAddress!) }
        return out
    }

    /// Digit and probabilities of each image, in order.
    public func predict(_ images: [RGBImage], invert: Bool = false) -> [Prediction] {
        let floats = preprocessor.floatsPerImage
        var predictions: [Prediction] = []
        predictions.reserveCapacity(images.count)
        var start = 0
        while start < images.count {
            let n = min(chunkSize, images.count - start)
            let batch = inputs.reserve(n * floats)
            for i in 0..<n { write(images[start + i], invert: invert, into: batch + i * floats) }
            let logits = model.classify(batch, count: n)
            let logP = logProbabilities.reserve(n * 10)
            LogSoftmaxNLL.logProbabilities(logits, rows: n, classes: 10, into: logP)
            for i in 0..<n {
                let row = logits + i * 10
                let probabilities = (0..<10).map { exp(logP[i * 10 + $0]) }
                predictions.append(Prediction(digit: Evaluator.argmax(row, classes: 10), probabilities: probabilities))
            }
            start += n
        }
        return predictions
    }

    private func write(_ image: RGBImage, invert: Bool, into out: UnsafeMutablePointer<Float>) {
        let fit = Self.fitted(image, inputSize: preprocessor.inputSize, invert: invert)
        let plane = fit.width * fit.height
        var planar = [UInt8](repeating: 0, count: 3 * plane)
        for p in 0..<plane {
            for c in 0..<3 { planar[c * plane + p] = fit.pixels[3 * p + c] }
        }
        let raw = RawImages(count: 1, channels: 3, height: fit.height, width: fit.width, pixels: planar, labels: [0],
                            downscale: .centreCrop)
        preprocessor.write(raw, index: 0, into: out)
    }
}
