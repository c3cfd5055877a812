import Foundation
import XCTest

/// Paths the tests read: the package root (found from this file), the repository's own `data/`, and the
/// shared datasets beside the clone.
enum TestPaths {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The committed `data/` (official MNIST files, the 1,083-image SVHN sample): tests that need only these
    /// read them here, so they run on a fresh clone.
    static let repositoryData: URL = packageRoot.appendingPathComponent("data")

    /// `../shared/data` next to the checkout (CI lays a copy of shared/ beside its clone). Only MNIST-M and the
    /// SVHN prefix, labels and boxes are needed from it; reach them through `requireSharedData`.
    static let sharedData: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")

    /// The path of `relativePath` under `sharedData`. A fresh clone has no ../shared, so its absence skips the
    /// calling test with one line naming the path instead of failing it.
    static func requireSharedData(_ relativePath: String) throws -> String {
        let path = sharedData.appendingPathComponent(relativePath).path
        guard FileManager.default.fileExists(atPath: path) else {
            throw XCTSkip("\(path) not found: needs ../shared/data (see data/README.md)")
        }
        return path
    }

    /// A fresh empty temporary folder, removed by the caller's teardown if it wants.
    static func temporaryDirectory(_ label: String = "dann") -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
