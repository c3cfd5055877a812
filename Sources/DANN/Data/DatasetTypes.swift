/// The three digit datasets dann-dist knows; raw values are the names used in paths and JSON keys.
public enum DatasetName: String, CaseIterable, Sendable {
    case mnist, svhn, mnistM = "mnist_m"
}

/// A dataset split.
public enum Split: String, CaseIterable, Sendable {
    case train, test
}

/// How a 32×32 image becomes 28×28 (docs/design.md §2.2): SVHN is resized nearest-neighbour, MNIST-M is
/// MNIST padded by 2 so a centre crop puts the digit back on MNIST's grid.
public enum DownscaleRule: Sendable {
    case nearest, centreCrop
}

/// Raw decoded images in the dataset's native form, samples in the requested order:
/// pixels [count][channels][height][width] UInt8 (planar), labels digit 0...9.
public struct RawImages: Sendable {
    public var count, channels, height, width: Int
    public var pixels: [UInt8]
    public var labels: [UInt8]
    /// How the preprocessor shrinks these images when a smaller input size is asked for.
    public var downscale: DownscaleRule

    /// Bytes of one image.
    public var imageBytes: Int { channels * height * width }

    public init(count: Int, channels: Int, height: Int, width: Int, pixels: [UInt8], labels: [UInt8],
                downscale: DownscaleRule = .nearest) {
        self.count = count
        self.channels = channels
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
        self.downscale = downscale
    }
}

/// A dataset split on disk. `count` comes from headers/labels without decoding all pixels where possible.
public protocol DigitDataset {
    var name: DatasetName { get }
    var split: Split { get }
    var count: Int { get }
    /// The file (or folder) the split is read from, for messages.
    var path: String { get }
    /// Decodes only the given sample indices (any order, may repeat), streaming the file once; result in the given order.
    func load(indices: [Int]) throws -> RawImages
    /// Every label in file order (digit 0...9), without decoding pixels where the format allows.
    func allLabels() throws -> [UInt8]
}

extension DigitDataset {
    /// Default for conformers outside this module (e.g. in-memory test datasets).
    public var path: String { "\(name.rawValue) \(split.rawValue)" }

    /// Default: decodes everything and keeps the labels (the file readers override this cheaply).
    public func allLabels() throws -> [UInt8] { try load(indices: Array(0..<count)).labels }

    /// Checks that every requested index is inside the split before any file is read.
    func checkIndices(_ indices: [Int]) throws {
        for i in indices where i < 0 || i >= count {
            throw DANNError.file(path, "sample index \(i) is outside 0..<\(count)")
        }
    }
}

/// For each file-order index, the output positions that want it: lets a reader stream the file once and
/// copy each needed image to every place it was asked for.
struct IndexPlan {
    /// `slots[i]` lists the output positions for file index i (empty when not requested).
    private(set) var slots: [Int: [Int]] = [:]
    /// The largest requested file index, so readers can stop streaming after it; -1 when none.
    let last: Int

    init(_ indices: [Int]) {
        var slots: [Int: [Int]] = [:]
        for (position, index) in indices.enumerated() { slots[index, default: []].append(position) }
        self.slots = slots
        last = indices.max() ?? -1
    }

    func positions(of index: Int) -> [Int]? { slots[index] }
}
