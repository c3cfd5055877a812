import ArgumentParser
import DANN
import Foundation

/// `dann-dist predict`: the digit and the ten probabilities for each image file.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict",
        abstract: "Classify PNG or JPEG images of single digits with a checkpoint.",
        discussion: """
            Each image is prepared like the training data: RGB (grey replicated); a 28x28 image is used as it \
            is, a 32x32 image is centre-cropped by 2 px (as MNIST-M is), any other size is scaled to the \
            model's input size by bilinear interpolation (halving by 2x2 averages first while it is at \
            least twice that size; the aspect ratio is not kept); then x/255 (and [-1, 1] for checkpoints \
            trained with --normalize). The network was trained on light digits on a dark background: for a \
            dark digit on a light background (mean brightness above 0.5, which predict warns about) pass \
            --invert. --annotate writes a PNG of min(n,8)*120 x ceil(n/8)*148 pixels: each input as the \
            network sees it, enlarged to 112x112, with the digit and its probability under it.
            """)

    @Option(help: "A model.safetensors, a checkpoint folder, a checkpoints/ folder or a run folder.")
    var checkpoint: String
    @Argument(help: "PNG or JPEG images (any size and colour type).") var images: [String]
    @Option(help: "Write a PNG sheet of the inputs with their predicted digits and probabilities.")
    var annotate: String?
    @Flag(help: "Print one JSON object {\"predictions\": [{\"image\", \"digit\", \"confidence\", \"probabilities\", \"mean\"}]}.")
    var json = false
    @Flag(help: "Invert the images (255 - x) first: for dark digits on a light background, e.g. scans of ink on paper.")
    var invert = false
    @Flag(help: "Map inputs to [-1, 1] as training with --normalize did (implied by the checkpoint's metadata).")
    var normalize = false

    func validate() throws {
        if images.isEmpty { throw ValidationError("give at least one image file") }
    }

    func run() throws {
        let opened = try InferenceCheckpoint.open(checkpoint)
        let decoded = try images.map { try ImageReader.read(path: $0) }
        let predictor = Predictor(model: opened.model, normalize: normalize || opened.normalize)
        let predictions = predictor.predict(decoded, invert: invert)
        let means = decoded.map(Predictor.meanIntensity)
        if !invert {
            for (path, mean) in zip(images, means) where mean > 0.5 {
                printError("dann-dist: note: \(path) is mostly light (mean \(String(format: "%.2f", mean))): if it is a dark digit on a light background, pass --invert")
            }
        }
        if let annotate {
            let size = opened.model.architecture.inputSize
            let views = decoded.map { Predictor.networkView($0, inputSize: size, invert: invert) }
            try PNGWriter.write(PredictionSheet.render(views: views, predictions: predictions), to: annotate)
        }
        if json {
            print(Self.json(images: images, predictions: predictions, means: means))
            return
        }
        for (path, p) in zip(images, predictions) {
            let probabilities = p.probabilities.map { String(format: "%.4f", $0) }.joined(separator: " ")
            print("\(path): \(p.digit) (\(String(format: "%.1f", p.confidence * 100))%)  p[0-9] = \(probabilities)")
        }
        if let annotate { print("annotated: \(annotate)") }
    }

    static func json(images: [String], predictions: [Prediction], means: [Double]) -> String {
        let entries = zip(zip(images, predictions), means).map { item, mean in
            let (path, p) = item
            let probabilities = p.probabilities.map { "\(Double($0))" }.joined(separator: ", ")
            return "{\"image\": \(jsonQuoted(path)), \"digit\": \(p.digit), \"confidence\": \(Double(p.confidence)), "
                + "\"probabilities\": [\(probabilities)], \"mean\": \(mean)}"
        }
        return "{\"predictions\": [" + entries.joined(separator: ", ") + "]}"
    }

}
