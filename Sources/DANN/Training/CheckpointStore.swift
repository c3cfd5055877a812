import Foundation

/// The `checkpoints/` folder of a run: `step-NNNNNNNN/` folders and a `latest` file naming the newest
/// complete one. A checkpoint is written into a temporary folder, each file fsynced, then the folder is
/// renamed into place and only then `latest` is replaced — so a crash never leaves `latest` pointing at a
/// half-written checkpoint.
public enum CheckpointStore {
    public static let latestFile = "latest"

    public static func folderName(step: Int) -> String { String(format: "step-%08d", step) }

    /// The newest complete checkpoint folder in `directory`, or nil when there is no `latest`.
    public static func latest(in directory: String) throws -> String? {
        let latestPath = URL(fileURLWithPath: directory).appendingPathComponent(latestFile).path
        guard FileManager.default.fileExists(atPath: latestPath) else { return nil }
        guard let text = try? String(contentsOfFile: latestPath, encoding: .utf8) else {
            throw DANNError.file(latestPath, "unreadable")
        }
        let name = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, !name.contains("/") else { throw DANNError.file(latestPath, "does not name a checkpoint folder") }
        let folder = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        guard FileManager.default.fileExists(atPath: folder) else {
            throw DANNError.file(latestPath, "names '\(name)', which does not exist")
        }
        return folder
    }

    /// Writes the files produced by `write(folder)` as checkpoint `step`, points `latest` at it and keeps
    /// only the newest `keep` checkpoints. Returns the checkpoint folder.
    @discardableResult
    public static func save(in directory: String, step: Int, keep: Int, write: (String) throws -> Void) throws -> String {
        let fm = FileManager.default
        try createDirectory(directory)
        let name = folderName(step: step)
        let final = URL(fileURLWithPath: directory).appendingPathComponent(name).path
        let temporary = URL(fileURLWithPath: directory).appendingPathComponent(".\(name).partial").path
        try? fm.removeItem(atPath: temporary)
        try createDirectory(temporary)
        do {
            try write(temporary)
            if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
            try fm.moveItem(atPath: temporary, toPath: final)
        } catch let error as DANNError {
            try? fm.removeItem(atPath: temporary)
            throw error
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw DANNError.file(final, "cannot write checkpoint (\(error.localizedDescription))")
        }
        try AtomicFile.writeText(name + "\n", to: URL(fileURLWithPath: directory).appendingPathComponent(latestFile).path)
        try prune(directory, keep: keep)
        return final
    }

    /// Removes the temporary folders of checkpoints whose writing was interrupted (a crash or `kill -9`
    /// mid-save), so they never linger until the next save of the same step.
    public static func removePartial(in directory: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(".step-") && name.hasSuffix(".partial") {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: directory).appendingPathComponent(name).path)
        }
    }

    /// Checkpoint steps present in `directory`, ascending.
    public static func steps(in directory: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { $0.hasPrefix("step-") ? Int($0.dropFirst(5)) : nil }.sorted()
    }

    static func prune(_ directory: String, keep: Int) throws {
        guard keep > 0 else { return }
        for step in steps(in: directory).dropLast(keep) {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: directory).appendingPathComponent(folderName(step: step)).path)
        }
    }

    static func createDirectory(_ path: String) throws {
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        catch { throw DANNError.file(path, "cannot create folder (\(error.localizedDescription))") }
    }
}
