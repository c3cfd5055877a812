import Foundation

/// What `data info` reports for one split.
public struct SplitInfo: Sendable {
    public var key: String            // "<dataset>_<split>"
    public var path: String
    public var count: Int
    public var classCounts: [Int]
    /// True when SVHN train is the bundled sample rather than the full set.
    public var sample: Bool
}

/// One official file checked by `data verify`.
public struct FileCheck: Sendable {
    public enum Status: String, Sendable { case ok, mismatch, missing, unknown }
    public var path: String
    public var md5: String?
    public var expected: String?
    public var status: Status
}

/// `data info` and `data verify` as library functions (the CLI only prints).
public enum DataInventory {
    /// Published md5 values of the official files, by file name.
    public static let officialMD5: [String: String] = [
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        "train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
        "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
    ]

    /// Every split present under `dataDir`, opened, read through and its labels counted. A present but
    /// unreadable file is an error (thrown, naming the file).
    public static func info(dataDir: String) throws -> [SplitInfo] {
        var result: [SplitInfo] = []
        for name in DatasetName.allCases {
            for split in [Split.train, .test] where DataPaths.isPresent(name, split, dataDir: dataDir) {
                let (dataset, note) = try openDataset(name, split, dataDir: dataDir)
                // Read each file to its end so a damaged one is reported here, not mid-training: MNIST's
                // loader always streams the whole image file; SVHN's reads X to its end (checking the zlib
                // Adler-32) after the last index asked for; the MNIST-M archive was already streamed whole,
                // gzip CRC-32 included, to list it.
                switch name {
                case .mnist: _ = try dataset.load(indices: [])
                case .svhn: _ = try dataset.load(indices: [dataset.count - 1])
                case .mnistM: break
                }
                var counts = [Int](repeating: 0, count: 10)
                for label in try dataset.allLabels() { counts[Int(label)] += 1 }
                result.append(SplitInfo(key: "\(name.rawValue)_\(split.rawValue)", path: dataset.path,
                                        count: dataset.count, classCounts: counts, sample: note != nil))
            }
        }
        return result
    }

    /// The `--json` object of `data info` (docs/design.md §5.5): keys "<dataset>_<split>", each with "n", "class_counts",
    /// "path" and "sample".
    public static func infoJSON(_ splits: [SplitInfo]) -> String {
        JSONText.encode(Dictionary(splits.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first }))
    }

    /// md5 of every official file under `dataDir` (MNIST .gz, SVHN .mat, the MNIST-M archive when present)
    /// compared with the published value where one is known.
    public static func verify(dataDir: String) throws -> [FileCheck] {
        var checks: [FileCheck] = []
        for name in DatasetName.allCases {
            for split in [Split.train, .test] {
                for path in DataPaths.officialFiles(name, split, dataDir: dataDir)
                where !checks.contains(where: { $0.path == path }) {
                    let expected = officialMD5[(path as NSString).lastPathComponent]
                    guard FileManager.default.fileExists(atPath: path) else {
                        checks.append(FileCheck(path: path, md5: nil, expected: expected, status: .missing))
                        continue
                    }
                    let md5 = try MD5.file(path)
                    let status: FileCheck.Status = expected == nil ? .unknown : (md5 == expected ? .ok : .mismatch)
                    checks.append(FileCheck(path: path, md5: md5, expected: expected, status: status))
                }
            }
        }
        if let sample = DataPaths.svhnSample(dataDir) {
            checks.append(FileCheck(path: sample, md5: try MD5.file(sample), expected: nil, status: .unknown))
        }
        return checks
    }

    /// The `--json` array of `data verify`: "path", "status", "md5" and "expected" (null when unknown).
    public static func verifyJSON(_ checks: [FileCheck]) -> String {
        JSONText.encode(checks)
    }
}

extension SplitInfo: Encodable {
    private enum CodingKeys: String, CodingKey {
        case count = "n", classCounts = "class_counts", path, sample
    }
}

extension FileCheck: Encodable {
    private enum CodingKeys: String, CodingKey { case path, status, md5, expected }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(status.rawValue, forKey: .status)
        try container.encode(md5, forKey: .md5)            // encode, not encodeIfPresent: nil is written as null
        try container.encode(expected, forKey: .expected)
    }
}
