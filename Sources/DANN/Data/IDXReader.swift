/// The header of an IDX file (the MNIST format): magic 0x0000 TT DD with TT the element type (0x08 =
/// unsigned byte) and DD the number of dimensions, then DD big-endian UInt32 sizes.
struct IDXHeader {
    let dims: [Int]
    var count: Int { dims[0] }
    var itemBytes: Int { dims.dropFirst().reduce(1, *) }

    /// Reads and checks the header; `expectedDims` is 1 for labels, 3 for images.
    static func read(_ stream: ByteStream, expectedDims: Int) throws -> IDXHeader {
        let magic = try stream.readBytes(4, what: "IDX magic")
        let path = stream.path
        guard magic[0] == 0, magic[1] == 0, magic[2] == 0x08 else {
            let hex = magic.map { String($0, radix: 16) }.joined(separator: " ")
            throw DANNError.file(path, "not an IDX file of unsigned bytes (magic \(hex), expected 0 0 8 \(expectedDims))")
        }
        guard Int(magic[3]) == expectedDims else {
            throw DANNError.file(path, "IDX file has \(magic[3]) dimensions, expected \(expectedDims)")
        }
        let raw = try stream.readBytes(4 * expectedDims, what: "IDX dimensions")
        let dims = (0..<expectedDims).map { d in
            raw[4 * d ..< 4 * d + 4].reduce(0) { $0 << 8 | Int($1) }
        }
        let shape = dims.map(String.init).joined(separator: "×")
        guard !dims.contains(0) else {
            throw DANNError.file(path, "IDX header promises \(shape) entries: an empty dimension holds no data")
        }
        // Everything the readers and samplers allocate follows the header's count, so it must fit in the
        // bytes the file can still deliver before anyone trusts it.
        let what = expectedDims == 1 ? "\(dims[0]) labels" : "\(dims[0]) images of \(dims.dropFirst().map(String.init).joined(separator: "×"))"
        try stream.requireAvailable(checkedProduct(dims), what)
        return IDXHeader(dims: dims)
    }
}

/// MNIST from its four IDX files (gzip-compressed or raw; chosen by the gzip magic).
public struct MNISTDataset: DigitDataset {
    public let name = DatasetName.mnist
    public let split: Split
    public let count: Int
    public let imagesPath: String
    public let labelsPath: String
    public var path: String { imagesPath }

    /// Official file names under `DIR/mnist/` (docs/design.md §4.1).
    public static func files(_ split: Split) -> (images: String, labels: String) {
        let stem = split == .train ? "train" : "t10k"
        return ("\(stem)-images-idx3-ubyte.gz", "\(stem)-labels-idx1-ubyte.gz")
    }

    /// Reads both headers and checks they agree (28×28 images, equal counts); no pixels are decoded.
    public init(split: Split, imagesPath: String, labelsPath: String) throws {
        self.split = split
        self.imagesPath = imagesPath
        self.labelsPath = labelsPath
        let images = try IDXHeader.read(openMaybeGzip(imagesPath), expectedDims: 3)
        let labels = try IDXHeader.read(openMaybeGzip(labelsPath), expectedDims: 1)
        guard images.dims[1] == 28, images.dims[2] == 28 else {
            throw DANNError.file(imagesPath, "images are \(images.dims[1])×\(images.dims[2]), expected 28×28")
        }
        guard images.count == labels.count else {
            throw DANNError.file(imagesPath, "holds \(images.count) images but \(labelsPath) holds \(labels.count) labels")
        }
        count = images.count
    }

    public func allLabels() throws -> [UInt8] {
        let stream = try openMaybeGzip(labelsPath)
        let header = try IDXHeader.read(stream, expectedDims: 1)
        let labels = try stream.readBytes(header.count, what: "\(header.count) labels promised by the header")
        if !(try stream.atEnd()) {
            throw DANNError.file(labelsPath, "longer than its header's \(header.count) labels")
        }
        if let bad = labels.firstIndex(where: { $0 > 9 }) {
            throw DANNError.file(labelsPath, "label \(labels[bad]) at index \(bad) is not a digit 0...9")
        }
        return labels
    }

    public func load(indices: [Int]) throws -> RawImages {
        try checkIndices(indices)
        let all = try allLabels()
        let plan = IndexPlan(indices)
        let side = 28, bytes = side * side
        var pixels = [UInt8](repeating: 0, count: indices.count * bytes)
        let stream = try openMaybeGzip(imagesPath)
        let header = try IDXHeader.read(stream, expectedDims: 3)
        var image = [UInt8](repeating: 0, count: bytes)
        try pixels.withUnsafeMutableBufferPointer { out in
            try image.withUnsafeMutableBufferPointer { img in
                // Streams to the end of the file (not just the last index) so a short or over-long file
                // is caught on every load, not only when the last images are asked for.
                for i in 0..<header.count {
                    try stream.readExactly(into: img.baseAddress!, count: bytes,
                                           what: "image \(i) of the \(header.count) promised by the header")
                    guard let positions = plan.positions(of: i) else { continue }
                    for p in positions { (out.baseAddress! + p * bytes).update(from: img.baseAddress!, count: bytes) }
                }
            }
        }
        if !(try stream.atEnd()) {
            throw DANNError.file(imagesPath, "longer than its header's \(header.count)×28×28 bytes")
        }
        return RawImages(count: indices.count, channels: 1, height: side, width: side, pixels: pixels,
                         labels: indices.map { all[$0] })
    }
}
