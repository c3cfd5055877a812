import Foundation

/// Where each dataset split lives under a data directory (docs/design.md §4.1), and which of them are present.
public enum DataPaths {
    /// Candidate locations of the bundled 1,083-image SVHN train sample, first match wins:
    /// `DIR/svhn-sample/` (the committed copy in `data/`) and `DIR/svhn/sample/` (the shared mirror's layout).
    public static func svhnSample(_ dataDir: String) -> String? {
        ["\(dataDir)/svhn-sample/train_32x32.mat", "\(dataDir)/svhn/sample/train_32x32.mat"]
            .first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The MNIST-M source: the extracted folder `DIR/mnist_m/mnist_m/` wins over `DIR/mnist_m/mnist_m.tar.gz`.
    public static func mnistM(_ dataDir: String) -> MNISTMDataset.Source? {
        var isDir: ObjCBool = false
        let folder = "\(dataDir)/mnist_m/mnist_m"
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue {
            return .folder(folder)
        }
        let archive = "\(dataDir)/mnist_m/mnist_m.tar.gz"
        return FileManager.default.fileExists(atPath: archive) ? .archive(archive) : nil
    }

    /// The official files of a split (the ones `data verify` checks), whether present or not.
    public static func officialFiles(_ name: DatasetName, _ split: Split, dataDir: String) -> [String] {
        switch name {
        case .mnist:
            let f = MNISTDataset.files(split)
            return ["\(dataDir)/mnist/\(f.images)", "\(dataDir)/mnist/\(f.labels)"]
        case .svhn:
            return ["\(dataDir)/svhn/\(SVHNDataset.fileName(split))"]
        case .mnistM:
            return ["\(dataDir)/mnist_m/mnist_m.tar.gz"]
        }
    }

    /// True when the split can be opened from `dataDir` (SVHN train counts the bundled sample).
    public static func isPresent(_ name: DatasetName, _ split: Split, dataDir: String) -> Bool {
        let fm = FileManager.default
        switch name {
        case .mnist: return officialFiles(name, split, dataDir: dataDir).contains { fm.fileExists(atPath: $0) }
        case .svhn:
            return fm.fileExists(atPath: officialFiles(name, split, dataDir: dataDir)[0])
                || (split == .train && svhnSample(dataDir) != nil)
        case .mnistM: return mnistM(dataDir) != nil
        }
    }
}

/// Opens `name`/`split` under dataDir (docs/design.md §4.1 paths). For SVHN train: if `dataDir/svhn/train_32x32.mat`
/// is missing, falls back to the bundled sample and returns a note line for the CLI to print.
/// A missing split is an error naming the file and how to get it.
public func openDataset(_ name: DatasetName, _ split: Split, dataDir: String) throws -> (DigitDataset, note: String?) {
    let fm = FileManager.default
    let hint = "not found (run scripts/download-data.sh)"
    switch name {
    case .mnist:
        let files = MNISTDataset.files(split)
        let images = "\(dataDir)/mnist/\(files.images)", labels = "\(dataDir)/mnist/\(files.labels)"
        for f in [images, labels] where !fm.fileExists(atPath: f) { throw DANNError.file(f, hint) }
        return (try MNISTDataset(split: split, imagesPath: images, labelsPath: labels), nil)
    case .svhn:
        let full = "\(dataDir)/svhn/\(SVHNDataset.fileName(split))"
        if fm.fileExists(atPath: full) { return (try SVHNDataset(split: split, path: full), nil) }
        if split == .train, let sample = DataPaths.svhnSample(dataDir) {
            let dataset = try SVHNDataset(split: .train, path: sample)
            let count = dataset.count.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US")))
            let note = "\(dataDir)/svhn has no full SVHN: using the \(count)-image bundled sample; run scripts/download-data.sh for the full set"
            return (dataset, note)
        }
        throw DANNError.file(full, hint)
    case .mnistM:
        guard let source = DataPaths.mnistM(dataDir) else {
            throw DANNError.file("\(dataDir)/mnist_m/mnist_m.tar.gz", hint)
        }
        return (try MNISTMDataset(split: split, source: source), nil)
    }
}

/// The first `limit` samples of a dataset (file order), for `--limit-source` / `--limit-target`.
public struct LimitedDataset: DigitDataset {
    public let base: DigitDataset
    public let count: Int
    public var name: DatasetName { base.name }
    public var split: Split { base.split }
    public var path: String { base.path }

    public init(_ base: DigitDataset, limit: Int?) {
        self.base = base
        count = min(base.count, max(0, limit ?? base.count))
    }

    public func load(indices: [Int]) throws -> RawImages {
        try checkIndices(indices)
        return try base.load(indices: indices)
    }

    public func allLabels() throws -> [UInt8] { Array(try base.allLabels().prefix(count)) }
}
