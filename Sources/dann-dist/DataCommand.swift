import ArgumentParser
import DANN

/// `dann-dist data info|verify`: what is present under the data directory, and whether the files are the
/// official ones.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Inspect and verify the datasets.",
        subcommands: [Info.self, Verify.self])

    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts and class histograms of every dataset split present.")
        @Option(help: "Data directory.") var data = "data"
        @Flag(help: "Print one JSON object keyed \"<dataset>_<split>\".") var json = false

        func run() throws {
            try runReportingErrors {
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
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "md5 of the official files against the published values.")
        @Option(help: "Data directory.") var data = "data"
        @Flag(help: "Print a JSON array of checks.") var json = false

        func run() throws {
            var bad = false
            try runReportingErrors {
                let checks = try DataInventory.verify(dataDir: data)
                bad = checks.contains { $0.status == .mismatch }
                if json {
                    print(DataInventory.verifyJSON(checks))
                    return
                }
                for c in checks {
                    switch c.status {
                    case .ok: print("ok        \(c.path)  \(c.md5!)")
                    case .mismatch: print("MISMATCH  \(c.path)  md5 \(c.md5!), expected \(c.expected!)")
                    case .missing: print("missing   \(c.path)")
                    case .unknown: print("present   \(c.path)  \(c.md5!) (no official checksum)")
                    }
                }
            }
            if bad {
                printError("dann-dist: error: some files do not match their official md5")
                throw ExitCode(1)
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
