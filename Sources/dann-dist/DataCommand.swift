import ArgumentParser
import DANN
import Foundation

/// `dann-dist data info|verify`: what is present under the data directory, and whether the files are the
/// official ones.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Inspect and verify the datasets.",
        subcommands: [Info.self, Verify.self, Load.self])

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts and class histograms of every dataset split present.")
        @Option(help: "Data directory.") var data = "data"
        @Flag(help: "Print one JSON object keyed \"<dataset>_<split>\".") var json = false

        func run() throws {
            let splits = try DataInventory.info(dataDir: data)
            if json {
                print(DataInventory.infoJSON(splits))
                return
            }
            if splits.isEmpty { print("no datasets under \(data)/ (run scripts/download-data.sh)") }
            for s in splits {
                let key = s.key.padding(toLength: 14, withPad: " ", startingAt: 0)
                let n = String(s.count).leftPadded(6)
                print("\(key) n=\(n)  classes \(s.classCounts.map(String.init).joined(separator: " "))  \(s.path)\(s.sample ? "  (sample)" : "")")
            }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "md5 of the official files against the published values.")
        @Option(help: "Data directory.") var data = "data"
        @Flag(help: "Print a JSON array of checks.") var json = false

        func run() throws {
            let checks = try DataInventory.verify(dataDir: data)
            if json {
                print(DataInventory.verifyJSON(checks))
            } else {
                for c in checks {
                    switch c.status {
                    case .ok: print("ok        \(c.path)  \(c.md5!)")
                    case .mismatch: print("MISMATCH  \(c.path)  md5 \(c.md5!), expected \(c.expected!)")
                    case .missing: print("missing   \(c.path)")
                    case .unknown: print("present   \(c.path)  \(c.md5!) (no official checksum)")
                    }
                }
            }
            if checks.contains(where: { $0.status == .mismatch }) {
                exitWithError("some files do not match their official md5")
            }
        }
    }

    struct Load: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode a split (or its first N samples) and report the time and mean pixel: what one epoch's re-read costs.")
        @Argument(help: "mnist, svhn or mnist_m.") var dataset: String
        @Argument(help: "train or test.") var split = "train"
        @Option(help: "Data directory.") var data = "data"
        @Option(parsing: .unconditional, help: "Only the first N samples.") var limit: Int?

        func run() throws {
            guard let name = DatasetName(rawValue: dataset) else { throw DANNError("unknown dataset \(dataset) (mnist, svhn, mnist_m)") }
            guard let part = Split(rawValue: split) else { throw DANNError("unknown split \(split) (train, test)") }
            let clock = ContinuousClock()
            let start = clock.now
            let (opened, note) = try openDataset(name, part, dataDir: data)
            if let note { printError(note) }
            let n = min(limit ?? opened.count, opened.count)
            let raw = try opened.load(indices: Array(0..<n))
            let seconds = (clock.now - start) / .seconds(1)
            let mean = Double(raw.pixels.reduce(0) { $0 + Int($1) }) / Double(max(1, raw.pixels.count)) / 255
            print("\(name.rawValue)_\(part.rawValue): \(raw.count) images \(raw.channels)×\(raw.height)×\(raw.width) in \(String(format: "%.2f", seconds)) s, mean pixel \(String(format: "%.4f", mean))")
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
