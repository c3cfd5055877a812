import ArgumentParser
import DANN
import Foundation

@main
struct DANNDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dann-dist",
        abstract: "Domain-adversarial neural network trainer (single process or MPI ranks).",
        subcommands: [Train.self, Eval.self, Predict.self, Analyze.self, Bench.self, DataCommand.self],
        defaultSubcommand: Train.self
    )

    /// Like ArgumentParser's main, but a bad flag is one line (what is wrong and where to look), not the
    /// usage screen, so that scripts and mpirun logs stay readable.
    static func main() {
        BLASKernels.relaunchWithBetterKernelsIfNeeded()
        var parsed = false
        do {
            var command = try parseAsRoot()
            parsed = true
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode || error is CleanExit { exit(withError: error) }
            let message = DANNDist.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            // A bad flag fails every rank of an mpirun job the same way, before MPI starts: rank 0 says it.
            // The other ranks wait before exiting, as mpirun ends the whole job when the first rank fails.
            let sameOnEveryRank = !parsed || error is ValidationError
            if !sameOnEveryRank || launcherRank() ?? 0 == 0 {
                printError("dann-dist: error: \(message.replacingOccurrences(of: "Error: ", with: "")) (see dann-dist --help)")
            } else {
                Thread.sleep(forTimeInterval: 2)
            }
            Foundation.exit(code.rawValue)
        }
    }
}

/// Runs a command body, turning library errors into one line on stderr and exit status 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as DANNError {
        printError("dann-dist: error: \(error.message)")
        throw ExitCode(1)
    }
}

/// This process's rank as the launcher's environment gives it (mpirun, srun/PMIx, PMI), before MPI starts.
func launcherRank(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
    ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"].lazy.compactMap { environment[$0].flatMap { Int($0) } }.first
}

func printError(_ line: String) {
    var stderr = StandardError()
    print(line, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
