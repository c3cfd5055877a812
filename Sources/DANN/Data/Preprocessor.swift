/// Turns raw images into the network's input per docs/design.md §2.2: Float CHW 3×S×S in [0,1] (S = 28 or 32),
/// grey replicated to 3 channels; 28×28 grey padded with zeros by 2 at S = 32; 32×32 shrunk to 28 by
/// nearest neighbour (SVHN, source index floor(i·32/28)) or a centre crop (MNIST-M). With `normalize`,
/// x ↦ (x − 0.5) / 0.5, i.e. [−1, 1] (torchvision `Normalize((0.5,)*3, (0.5,)*3)` after padding).
public struct Preprocessor: Sendable {
    public let inputSize: Int
    public let normalize: Bool
    /// The Float of each byte value, computed once with the per-pixel formula below: a lookup instead of a division
    /// per pixel, with the same bits.
    private let values: [Float]

    public init(inputSize: Int, normalize: Bool) {
        precondition(inputSize == 28 || inputSize == 32, "input size is validated by the CLI")
        self.inputSize = inputSize
        self.normalize = normalize
        // Same operations as torchvision's ToTensor (x / 255) and Normalize ((x − 0.5) / 0.5), so a PyTorch twin
        // gets bit-identical inputs.
        values = (0...255).map { byte in
            let unit = Float(byte) / 255
            return normalize ? (unit - 0.5) / 0.5 : unit
        }
    }

    /// Floats per preprocessed image (3·S·S).
    public var floatsPerImage: Int { 3 * inputSize * inputSize }

    /// Writes image `index` of `raw` as Float 3×S×S (CHW) into `out`.
    public func write(_ raw: RawImages, index: Int, into out: UnsafeMutablePointer<Float>) {
        let s = inputSize, h = raw.height, w = raw.width
        values.withUnsafeBufferPointer { values in raw.pixels.withUnsafeBufferPointer { all in
            let image = all.baseAddress! + index * raw.imageBytes
            for c in 0..<3 {
                let plane = image + (raw.channels == 1 ? 0 : c) * h * w
                let dst = out + c * s * s
                for y in 0..<s {
                    for x in 0..<s {
                        let value: UInt8
                        if s == h && s == w {
                            value = plane[y * w + x]
                        } else if s > h {
                            // Smaller image (MNIST 28 at 32): centred with a zero border.
                            let oy = y - (s - h) / 2, ox = x - (s - w) / 2
                            value = (oy >= 0 && oy < h && ox >= 0 && ox < w) ? plane[oy * w + ox] : 0
                        } else if raw.downscale == .centreCrop {
                            value = plane[(y + (h - s) / 2) * w + x + (w - s) / 2]
                        } else {
                            value = plane[(y * h / s) * w + x * w / s]
                        }
                        dst[y * s + x] = values[Int(value)]
                    }
                }
            }
        } }
    }
}
