import Foundation

/// Paths the tests read: the package root (found from this file) and the shared datasets beside the clone.
enum TestPaths {
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared/data` next to the checkout (CI lays a copy of shared/ beside its clone).
    static let sharedData: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")

    /// A fresh empty temporary folder, removed by the caller's teardown if it wants.
    static func temporaryDirectory(_ label: String = "dann") -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
