/// SVHN (format 2, cropped digits) from an official-style MAT-file: `X` uint8 32×32×3×N in MATLAB's
/// column-major order (element (row r, col c, channel k, image n) at r + 32c + 1024k + 3072n, so each
/// image is 3,072 contiguous bytes) and `y` double N×1 with 10 meaning digit 0.
public struct SVHNDataset: DigitDataset {
    public let name = DatasetName.svhn
    public let split: Split
    public let count: Int
    public let path: String
    let file: MATFile
    let x: MATFile.Variable
    let y: MATFile.Variable

    /// Official file names under `DIR/svhn/` (docs/design.md §4.1).
    public static func fileName(_ split: Split) -> String { "\(split.rawValue)_32x32.mat" }

    /// Lists the variables (no pixel is decompressed) and checks X and y: names, classes, shapes.
    public init(split: Split, path: String) throws {
        self.split = split
        self.path = path
        file = try MATFile(path: path)
        let variables = try file.variables()
        guard let x = variables.first(where: { $0.name == "X" }) else {
            throw DANNError.file(path, "MAT-file has no variable X (found: \(variables.map(\.name).joined(separator: ", ")))")
        }
        guard let y = variables.first(where: { $0.name == "y" }) else {
            throw DANNError.file(path, "MAT-file has no variable y (found: \(variables.map(\.name).joined(separator: ", ")))")
        }
        guard x.classID == 9, !x.complex else {
            throw DANNError.file(path, "variable X is \(x.complex ? "complex " : "")\(x.className), expected uint8")
        }
        guard x.dims.count == 4, x.dims[0] == 32, x.dims[1] == 32, x.dims[2] == 3 else {
            throw DANNError.file(path, "variable X is \(x.shape), expected 32×32×3×N")
        }
        guard y.classID == 6, !y.complex else {
            throw DANNError.file(path, "variable y is \(y.complex ? "complex " : "")\(y.className), expected double")
        }
        let n = x.dims[3]
        guard n > 0 else { throw DANNError.file(path, "variable X is \(x.shape): it holds no images") }
        guard y.dims.count == 2, y.dims.contains(1), y.dims[0] * y.dims[1] == n else {
            throw DANNError.file(path, "variable y is \(y.shape), expected \(n)×1 to match X's \(n) images")
        }
        self.x = x
        self.y = y
        count = n
    }

    /// The header text of the MAT-file ("MATLAB 5.0 MAT-file, Platform: …").
    public var headerText: String { file.headerText }

    public func allLabels() throws -> [UInt8] {
        let values = try file.readDoubles(y)
        guard values.count == count else {
            throw DANNError.file(path, "variable y holds \(values.count) values, expected \(count)")
        }
        return try values.enumerated().map { i, v in
            guard v >= 1, v <= 10, v == v.rounded() else {
                throw DANNError.file(path, "y[\(i)] = \(v) is not a label 1...10")
            }
            return UInt8(Int(v) % 10)
        }
    }

    public func load(indices: [Int]) throws -> RawImages {
        try checkIndices(indices)
        let labels = try allLabels()
        return try SVHNDataset.streamImages(file: file, x: x, count: count, indices: indices, labels: labels)
    }

    /// Streams X once, keeping only the requested images (planar [k][r][c]). After the last one it reads
    /// on to the end of a compressed X so that zlib checks the stream's Adler-32: stopping early would let
    /// flipped bytes through as wrong pixels. `verify: false` is only for files known to be cut short.
    static func streamImages(file: MATFile, x: MATFile.Variable, count: Int, indices: [Int],
                             labels: [UInt8]?, verify: Bool = true) throws -> RawImages {
        let (type, bytes, stream, _) = try file.openRealPart(x)
        guard type == .uint8 else {
            throw DANNError.file(file.path, "variable X stores its data as \(type), expected miUINT8")
        }
        let imageBytes = 3072
        guard bytes == count * imageBytes else {
            throw DANNError.file(file.path, "variable X holds \(bytes) bytes, expected \(count)×3072")
        }
        let plan = IndexPlan(indices)
        var pixels = [UInt8](repeating: 0, count: indices.count * imageBytes)
        var image = [UInt8](repeating: 0, count: imageBytes)
        if plan.last >= 0 {
            try pixels.withUnsafeMutableBufferPointer { out in
                try image.withUnsafeMutableBufferPointer { img in
                    for n in 0...plan.last {
                        try stream.readExactly(into: img.baseAddress!, count: imageBytes, what: "image \(n) of X")
                        guard let positions = plan.positions(of: n) else { continue }
                        for p in positions {
                            let dst = out.baseAddress! + p * imageBytes
                            // Column-major (r + 32c) to row-major (32r + c) within each channel plane.
                            for k in 0..<3 {
                                for c in 0..<32 {
                                    for r in 0..<32 { dst[k * 1024 + r * 32 + c] = img[k * 1024 + c * 32 + r] }
                                }
                            }
                        }
                    }
                }
            }
        }
        if verify { try stream.drain() }
        return RawImages(count: indices.count, channels: 3, height: 32, width: 32, pixels: pixels,
                         labels: labels.map { l in indices.map { l[$0] } } ?? [UInt8](repeating: 0, count: indices.count))
    }
}

/// Reads the first `count` images of X from a MAT-file whose X may be cut short (such as the genuine
/// official prefix in the shared data), for checking image orientation against an independent decode.
/// Labels are zero (y is not read).
func readSVHNPrefixImages(path: String, count: Int) throws -> (header: String, x: MATFile.Variable, images: RawImages) {
    let file = try MATFile(path: path)
    guard let x = try file.variables(allowTruncated: true).first(where: { $0.name == "X" }) else {
        throw DANNError.file(path, "MAT-file has no variable X")
    }
    // Checked before x.dims[3] is read: an X of fewer dimensions trapped here (found writing the mat fuzz target; input
    // Fuzz/corpus/mat/crash-svhn-prefix-2d-X.mat).
    guard x.dims.count == 4, x.dims[0] == 32, x.dims[1] == 32, x.dims[2] == 3 else {
        throw DANNError.file(path, "variable X is \(x.shape), expected 32×32×3×N")
    }
    // The file is cut inside X, so its zlib stream has no trailer to check.
    let images = try SVHNDataset.streamImages(file: file, x: x, count: x.dims[3], indices: Array(0..<count), labels: nil,
                                              verify: false)
    return (file.headerText, x, images)
}
