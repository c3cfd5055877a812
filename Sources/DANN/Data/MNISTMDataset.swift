import Foundation

/// MNIST-M (Ganin & Lempitsky 2015): 32×32 RGB PNGs listed by `mnist_m_<split>_labels.txt` lines
/// ("00000000.png 5"), read either straight from `mnist_m.tar.gz` (tar over gzip, streamed) or from the
/// extracted folder `mnist_m/`.
public struct MNISTMDataset: DigitDataset {
    /// Where the files live.
    public enum Source: Sendable {
        case archive(String)
        case folder(String)
    }

    public let name = DatasetName.mnistM
    public let split: Split
    public let source: Source
    /// Image file names in label-file order (sample i is `names[i]`).
    public let names: [String]
    let labels: [UInt8]
    public var count: Int { names.count }
    public var path: String {
        switch source { case .archive(let p): return p; case .folder(let p): return p }
    }

    var folderName: String { "mnist_m_\(split.rawValue)" }
    var labelsName: String { "mnist_m_\(split.rawValue)_labels.txt" }

    /// Reads the labels and checks every line names an image that exists. For an archive this streams the
    /// whole tar.gz once (about a second); the result is shared by both splits of the same archive.
    public init(split: Split, source: Source) throws {
        self.split = split
        self.source = source
        let labelsText: [UInt8]
        let present: (String) -> Bool
        let labelsPath: String
        switch source {
        case .archive(let archive):
            let listing = try ArchiveListing.shared(archive)
            guard let text = listing.labelFiles["mnist_m_\(split.rawValue)_labels.txt"] else {
                throw DANNError.file(archive, "archive has no mnist_m_\(split.rawValue)_labels.txt")
            }
            labelsText = text
            let members = listing.images[split] ?? []
            present = { members.contains($0) }
            labelsPath = "\(archive): mnist_m_\(split.rawValue)_labels.txt"
        case .folder(let folder):
            labelsPath = "\(folder)/mnist_m_\(split.rawValue)_labels.txt"
            labelsText = try readWholeFile(labelsPath)
            let dir = "\(folder)/mnist_m_\(split.rawValue)"
            present = { FileManager.default.fileExists(atPath: "\(dir)/\($0)") }
        }
        var names: [String] = [], labels: [UInt8] = []
        for (n, line) in labelsText.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == 9 })
            if fields.isEmpty { continue }
            let lineName = String(decoding: fields[0], as: UTF8.self)
            guard fields.count == 2, fields[1].count == 1, let digit = fields[1].first,
                  digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") else {
                throw DANNError.file(labelsPath, "line \(n + 1) is not \"NAME.png DIGIT\"")
            }
            guard present(lineName) else {
                throw DANNError.file(labelsPath, "line \(n + 1) names \(lineName), which is not in mnist_m_\(split.rawValue)/")
            }
            names.append(lineName)
            labels.append(digit - UInt8(ascii: "0"))
        }
        guard !names.isEmpty else { throw DANNError.file(labelsPath, "lists no images") }
        self.names = names
        self.labels = labels
    }

    public func allLabels() throws -> [UInt8] { labels }

    public func load(indices: [Int]) throws -> RawImages {
        try checkIndices(indices)
        let plane = 3 * 32 * 32
        var pixels = [UInt8](repeating: 0, count: indices.count * plane)
        let plan = IndexPlan(indices)
        switch source {
        case .folder(let folder):
            try pixels.withUnsafeMutableBufferPointer { out in
                var decoded = [UInt8](repeating: 0, count: plane)
                for (index, positions) in plan.allSlots {
                    let file = "\(folder)/\(folderName)/\(names[index])"
                    try Self.decodePlanar(readWholeFile(file), path: file, into: &decoded)
                    for p in positions { (out.baseAddress! + p * plane).update(from: decoded, count: plane) }
                }
            }
        case .archive(let archive):
            var wanted: [String: Int] = [:]
            for index in plan.allSlots.keys { wanted[names[index]] = index }
            let tar = TarReader(try openMaybeGzip(archive))
            var decoded = [UInt8](repeating: 0, count: plane)
            try pixels.withUnsafeMutableBufferPointer { out in
                while !wanted.isEmpty, let entry = try tar.next() {
                    let parts = entry.name.split(separator: "/")
                    guard entry.isFile, parts.count >= 2, parts[parts.count - 2] == folderName,
                          let index = wanted[String(parts[parts.count - 1])] else { continue }
                    try Self.decodePlanar(tar.readData(entry), path: "\(archive): \(entry.name)", into: &decoded)
                    for p in plan.positions(of: index)! {
                        (out.baseAddress! + p * plane).update(from: decoded, count: plane)
                    }
                    wanted[names[index]] = nil
                }
            }
            if let missing = wanted.keys.sorted().first {
                throw DANNError.file(archive, "\(folderName)/\(missing) is not in the archive")
            }
            // The loop stops at the last wanted member; the gzip CRC-32 at the end of the archive is what
            // vouches for the pixels just decoded, so read on to it (well under a second for MNIST-M).
            try tar.finish()
        }
        return RawImages(count: indices.count, channels: 3, height: 32, width: 32, pixels: pixels,
                         labels: indices.map { labels[$0] }, downscale: .centreCrop)
    }

    /// One 32×32 PNG decoded by `ImageReader` and stored planar, [3][32][32].
    private static func decodePlanar(_ bytes: [UInt8], path: String, into out: UnsafeMutablePointer<UInt8>) throws {
        let image = try ImageReader.decodePNG(bytes, path: path, size: (32, 32))
        let plane = 32 * 32
        for i in 0..<plane {
            for c in 0..<3 { out[c * plane + i] = image.pixels[3 * i + c] }
        }
    }
}

/// What one pass over an MNIST-M archive finds: the two label files and the image names per split.
/// Cached per archive (path, size, modification time) so opening train and test scans once.
final class ArchiveListing: @unchecked Sendable {
    var labelFiles: [String: [UInt8]] = [:]
    var images: [Split: Set<String>] = [:]

    private static let lock = NSLock()
    nonisolated(unsafe) private static var cache: [String: ArchiveListing] = [:]

    static func shared(_ archive: String) throws -> ArchiveListing {
        let attributes = try? FileManager.default.attributesOfItem(atPath: archive)
        let key = "\(archive)|\(attributes?[.size] ?? 0)|\((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        lock.lock()
        if let hit = cache[key] { lock.unlock(); return hit }
        lock.unlock()
        let listing = try ArchiveListing(archive)
        lock.lock()
        cache[key] = listing
        lock.unlock()
        return listing
    }

    private init(_ archive: String) throws {
        let tar = TarReader(try openMaybeGzip(archive))
        while let entry = try tar.next() {
            guard entry.isFile else { continue }
            let parts = entry.name.split(separator: "/").map(String.init)
            guard let last = parts.last else { continue }
            if last.hasPrefix("mnist_m_"), last.hasSuffix("_labels.txt") {
                labelFiles[last] = try tar.readData(entry)
            } else if parts.count >= 2, last.hasSuffix(".png") {
                for split in Split.allCases where parts[parts.count - 2] == "mnist_m_\(split.rawValue)" {
                    images[split, default: []].insert(last)
                }
            }
        }
        // `next` stops at the end-of-archive marker, before the gzip trailer: check it before trusting the labels.
        try tar.finish()
    }
}

/// The whole of a small file, with errors naming it.
func readWholeFile(_ path: String) throws -> [UInt8] {
    let stream = try FileStream(file: path)
    return try stream.readBytes(stream.size, what: "file")
}

extension IndexPlan {
    /// Every requested file index with its output positions.
    var allSlots: [Int: [Int]] { slots }
}
