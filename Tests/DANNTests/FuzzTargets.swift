import Foundation
#if !DANN_FUZZ_BUILD
@testable import DANN
#endif

/// The reader entry points that `scripts/fuzz.sh` fuzzes, one function per target. The same file is
/// compiled twice: into the test target (FuzzCorpusReplayTests replays every committed corpus file through
/// it, in-process, without the fuzzer), and by `scripts/fuzz.sh` straight into the DANN module together
/// with `Fuzz/Entry.swift` (there `DANN_FUZZ_BUILD` is defined and there is no module to import).
///
/// The contract under test: whatever the bytes, a reader either loads them or throws a `DANNError`.
/// A trap, a sanitizer report, a leak, a timeout or any other error type is a finding. A target runs the
/// stages a real caller runs (open, list, load); when a stage throws a `DANNError` the stages that do not
/// depend on it still run, and the first `DANNError` is rethrown at the end.
enum FuzzTargets {
    enum Target: String, CaseIterable {
        /// MNIST IDX files (labels or images, raw or gzip): `MNISTDataset` init, `allLabels`, `load`.
        case idx
        /// SVHN MAT v5 files: `MATFile` header and listing, `readDoubles`, `SVHNDataset`, the prefix reader.
        case mat
        /// tar or tar.gz archives: `TarReader` as the MNIST-M listing and loader drive it, PNG members decoded.
        case tar
        /// PNG or JPEG files: `ImageReader.read`, and `decodePNG` (the MNIST-M 32×32 decoder) for PNGs.
        case image
        /// Whole safetensors files: `SafeTensors.read` (`decode`), then model and trainer-state loading.
        case safetensors
        /// A safetensors header (JSON) with synthesized data: reaches `ModelFile` / `TrainerState` loading
        /// with inputs far smaller than a real checkpoint. Input: header bytes, optionally a NUL and a fill
        /// pattern for the data region (zeros without one).
        case checkpoint
        /// `TrainingConfig.fromJSON` (config.json and the trainer's metadata), then `validate` and a round trip.
        case config
        /// The MNIST-M labels parser (`mnist_m_train_labels.txt` in a folder source) and `load` of what it lists.
        case mnistm
    }

    /// An error other than `DANNError` escaped a reader, or a check of the harness failed.
    struct Finding: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `target` on `data`, writing scratch files into `directory` (which must exist). `log`, when
    /// given, hears every stage's `DANNError` (the one thrown at the end is only the first).
    static func run(_ target: Target, _ data: [UInt8], directory: String, log: ((DANNError) -> Void)? = nil) throws {
        let run = Stages(log: log)
        do {
            switch target {
            case .idx: try idx(data, directory, run)
            case .mat: try mat(data, directory, run)
            case .tar: try tar(data, directory, run)
            case .image: try image(data, directory, run)
            case .safetensors: try safetensors(data, directory, run)
            case .checkpoint: try checkpoint(data, directory, run)
            case .config: try config(data, directory, run)
            case .mnistm: try mnistm(data, directory, run)
            }
        } catch let error as DANNError {
            run.record(error)
        } catch let finding as Finding {
            throw finding
        } catch {
            throw Finding(description: "\(target): a reader threw \(type(of: error)) instead of DANNError: \(error)")
        }
        try run.finish()
    }

    /// Records the first `DANNError` of independent stages; anything else propagates.
    final class Stages {
        private(set) var first: DANNError?
        let log: ((DANNError) -> Void)?

        init(log: ((DANNError) -> Void)?) { self.log = log }

        func record(_ error: DANNError) {
            log?(error)
            if first == nil { first = error }
        }

        /// Runs one stage; a `DANNError` is recorded and the caller goes on with the next stage.
        func stage(_ body: () throws -> Void) throws {
            do { try body() } catch let error as DANNError { record(error) }
        }

        func finish() throws { if let first { throw first } }
    }

    // MARK: - Scratch files

    /// Writes `bytes` to `path` (truncating), with POSIX calls so the cost per input stays small.
    static func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Finding(description: "cannot create scratch file \(path): errno \(errno)") }
        defer { close(fd) }
        var done = 0
        try bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw Finding(description: "cannot write scratch file \(path): errno \(errno)") }
                done += n
            }
        }
    }

    private static func makeDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        catch { throw Finding(description: "cannot create scratch folder \(path): \(error)") }
    }

    // MARK: - IDX

    /// Headers promising more than this many samples are only parsed: a companion file matching them
    /// (the other half of the label/image pair `MNISTDataset` needs) would cost too much per input.
    static let idxCompanionLimit = 1024

    private static func idx(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let path = dir + "/idx-input", companion = dir + "/idx-companion"
        try write(data, to: path)
        // Which half of the pair does the input claim to be? The header reader decides (it throws for the other).
        let asLabels = try? IDXHeader.read(openMaybeGzip(path), expectedDims: 1)
        let asImages = asLabels == nil ? try? IDXHeader.read(openMaybeGzip(path), expectedDims: 3) : nil
        let dataset: MNISTDataset
        if let labels = asLabels, labels.count <= idxCompanionLimit {
            let n = labels.count
            try write(idxHeader([n, 28, 28]) + [UInt8](repeating: 0x80, count: n * 784), to: companion)
            dataset = try MNISTDataset(split: .test, imagesPath: companion, labelsPath: path)
        } else if let images = asImages, images.count <= idxCompanionLimit {
            let n = images.count
            try write(idxHeader([n]) + (0..<n).map { UInt8($0 % 10) }, to: companion)
            dataset = try MNISTDataset(split: .test, imagesPath: path, labelsPath: companion)
        } else {
            // Not IDX, or too many samples for a companion: the header readers' own errors.
            try run.stage { _ = try IDXHeader.read(openMaybeGzip(path), expectedDims: 1) }
            try run.stage { _ = try IDXHeader.read(openMaybeGzip(path), expectedDims: 3) }
            return
        }
        try run.stage { _ = try dataset.allLabels() }
        let n = dataset.count
        try run.stage { _ = try dataset.load(indices: [n - 1, 0, n / 2, 0]) }
    }

    private static func idxHeader(_ dims: [Int]) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        return bytes
    }

    // MARK: - MAT v5

    private static func mat(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let path = dir + "/input.mat"
        try write(data, to: path)
        let file = try MATFile(path: path)
        try run.stage {
            for variable in try file.variables(allowTruncated: true) where MATFile.isNumeric(variable.classID) && !variable.truncated {
                try run.stage { _ = try file.readDoubles(variable) }
            }
        }
        try run.stage {
            let svhn = try SVHNDataset(split: .train, path: path)
            try run.stage { _ = try svhn.allLabels() }
            try run.stage { _ = try svhn.load(indices: [svhn.count - 1, 0, svhn.count / 2]) }
        }
        try run.stage { _ = try readSVHNPrefixImages(path: path, count: 1) }
    }

    // MARK: - tar

    /// What `ArchiveListing` and `MNISTMDataset.load(.archive)` do with an archive, without the listing's
    /// process-wide cache (keyed by path, size and mtime, it would return stale listings and grow with every
    /// input): label files read into memory, `mnist_m_<split>/*.png` members decoded as 32×32, then `finish`.
    private static func tar(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let path = dir + "/input.tar"
        try write(data, to: path)
        let tar = TarReader(try openMaybeGzip(path))
        while let entry = try tar.next() {
            guard entry.isFile else { continue }
            let parts = entry.name.split(separator: "/").map(String.init)
            guard let last = parts.last else { continue }
            if last.hasPrefix("mnist_m_"), last.hasSuffix("_labels.txt") {
                _ = try tar.readData(entry)
            } else if parts.count >= 2, last.hasSuffix(".png"),
                      Split.allCases.contains(where: { parts[parts.count - 2] == "mnist_m_\($0.rawValue)" }) {
                let bytes = try tar.readData(entry)
                try run.stage {
                    _ = try ImageReader.decodePNG(bytes, path: "\(path): \(entry.name)", size: (32, 32))
                }
            }
        }
        try tar.finish()
    }

    // MARK: - PNG / JPEG

    private static func image(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let path = dir + "/input-image"
        try write(data, to: path)
        try run.stage {
            let image = try ImageReader.read(path: path)
            guard image.pixels.count == image.width * image.height * 3 else {
                throw Finding(description: "ImageReader returned \(image.pixels.count) bytes for \(image.width)×\(image.height)")
            }
        }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) {
            try run.stage { _ = try ImageReader.decodePNG(data, path: path, size: (32, 32)) }
        }
    }

    // MARK: - safetensors and checkpoints

    private static func safetensors(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let path = dir + "/input.safetensors"
        try write(data, to: path)
        try loadCheckpoint(path, run)
    }

    /// A synthesized data region larger than this is cut (decode then reports the file truncated). The
    /// small networks need about 0.8 MB; the seed networks' 133 MB are out of reach (see `cachedModel`).
    static let maximumSynthesizedData = 8 << 20

    private static func checkpoint(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let path = dir + "/input-checkpoint.safetensors"
        try write(synthesizeSafeTensors(data), to: path)
        try loadCheckpoint(path, run)
    }

    /// `header` [NUL pattern] → a safetensors file: the 8-byte length, the header as given, and as many data
    /// bytes as the largest `data_offsets` end names (capped), filled by repeating the pattern.
    static func synthesizeSafeTensors(_ input: [UInt8]) -> [UInt8] {
        let split = input.firstIndex(of: 0) ?? input.count
        let header = Array(input[..<split])
        let pattern = split < input.count ? Array(input[(split + 1)...]) : []
        var dataSize = 0
        if let json = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any] {
            for value in json.values {
                guard let fields = value as? [String: Any], let pair = fields["data_offsets"] as? [Any], pair.count == 2,
                      let end = (pair[1] as? NSNumber)?.intValue, end > 0 else { continue }
                dataSize = max(dataSize, min(end, maximumSynthesizedData))
            }
        }
        var file: [UInt8] = []
        file.reserveCapacity(8 + header.count + dataSize)
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { file.append(contentsOf: $0) }
        file += header
        if pattern.isEmpty {
            file += repeatElement(0, count: dataSize)
        } else {
            for i in 0..<dataSize { file.append(pattern[i % pattern.count]) }
        }
        return file
    }

    /// What `eval` / `predict` (`ModelFile.openWithMetadata`) and `--resume` (`TrainerState.load`) do with a
    /// checkpoint file, the model taken from a cache instead of built per input.
    private static func loadCheckpoint(_ path: String, _ run: Stages) throws {
        let contents = try SafeTensors.read(path: path)
        let dataBytes = contents.tensors.values.reduce(0) { $0 + $1.data.count }
        try run.stage {
            let arch = try ModelFile.architecture(metadata: contents.metadata, tensors: contents.tensors, path: path)
            guard let model = try cachedModel(arch, dataBytes: dataBytes) else { return }
            try ModelFile.load(into: model, tensors: contents.tensors, path: path)
        }
        guard contents.metadata["config"] != nil else { return }
        try run.stage {
            // The trainer picks model and optimizer from its own config before loading the state.
            let config = try TrainingConfig.fromJSON(contents.metadata["config"]!, path: path)
            guard let arch = try? Architecture.named(config.arch).withInputSize(config.inputSize),
                  Architecture.inputSizes.contains(config.inputSize),
                  let model = try cachedModel(arch, dataBytes: dataBytes) else { return }
            let count = model.arena.count
            let optimizer: Optimizer = config.optimizer == .adam ? Adam(count: count) : SGD(count: count)
            _ = try TrainerState.load(from: path, into: optimizer, model: model)
        }
    }

    nonisolated(unsafe) private static var models: [String: DANNModel] = [:]

    /// One model per architecture and input size, built on first use. The seed networks (33 M parameters)
    /// are only built for a file whose tensors could hold them: for a smaller one `load` fails on the first
    /// missing or mis-shaped tensor, which the small networks exercise in the same code.
    private static func cachedModel(_ arch: Architecture, dataBytes: Int) throws -> DANNModel? {
        let key = "\(arch.name)@\(arch.inputSize)"
        if let model = models[key] { return model }
        if !arch.name.hasPrefix("small") && dataBytes < 100_000_000 { return nil }
        let model = try DANNModel(architecture: arch, dropout: 0)
        models[key] = model
        return model
    }

    // MARK: - Training config

    private static func config(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let path = dir + "/config.json"
        let config = try TrainingConfig.fromJSON(String(decoding: data, as: UTF8.self), path: path)
        try run.stage { try config.validate() }
        _ = config.runIdentity
        let again = try TrainingConfig.fromJSON(try config.json(), path: path)
        guard again == config else {
            throw Finding(description: "config does not survive json() → fromJSON: \(config) became \(again)")
        }
    }

    // MARK: - MNIST-M labels

    /// Images present in the folder source: `mnist_m_train/0000000{0,1,2}.png` (32×32), and one of another size.
    static let mnistmImages = ["00000000.png", "00000001.png", "00000002.png", "wide.png"]

    private static func mnistm(_ data: [UInt8], _ dir: String, _ run: Stages) throws {
        let folder = dir + "/mnist_m"
        let images = folder + "/mnist_m_train"
        if !FileManager.default.fileExists(atPath: images + "/wide.png") {
            try makeDirectory(images)
            for (i, name) in mnistmImages.enumerated() {
                let side = name == "wide.png" ? 40 : 32
                let image = RGBImage(width: side, height: 32, pixels: (0..<(side * 32 * 3)).map { UInt8(($0 * 7 + i * 50) & 255) })
                try write(try PNGWriter.encode(image), to: "\(images)/\(name)")
            }
        }
        try write(data, to: folder + "/mnist_m_train_labels.txt")
        let dataset = try MNISTMDataset(split: .train, source: .folder(folder))
        guard dataset.names.count == (try dataset.allLabels()).count else {
            throw Finding(description: "MNIST-M: \(dataset.names.count) names but \(try dataset.allLabels().count) labels")
        }
        // Every listed image, at most 16 (duplicates in the list are loaded once per position).
        let n = min(dataset.count, 16)
        try run.stage { _ = try dataset.load(indices: Array(0..<n)) }
    }
}
