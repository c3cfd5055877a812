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

    /// Like ArgumentParser's main, but every error ends through `exitWithError`: a bad flag is one line (what is
    /// wrong and where to look), not the usage screen, so that scripts and mpirun logs stay readable.
    static func main() {
        BLASKernels.relaunchWithBetterKernelsIfNeeded()
        var parsed = false
        do {
            var command = try parseAsRoot()
            parsed = true
            try command.run()
        } catch let error as DANNError {
            exitWithError(error.message)
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is ExitCode || error is CleanExit { exit(withError: error) }
            let message = DANNDist.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            // Parsing and validation errors come before MPI starts, alike on every rank of an mpirun job.
            let usage = !parsed || error is ValidationError
            exitWithError(usage ? "\(message.replacingOccurrences(of: "Error: ", with: "")) (see dann-dist --help)" : message,
                          status: usage ? code.rawValue : 1, sameOnEveryRank: usage)
        }
    }
}

/// The one way a command ends on an error: one line `dann-dist: error: <message>` on stderr, then exit
/// `status`: 64 (argument-parser's usage status) for bad flags, 1 for a run that failed.
/// - sameOnEveryRank: the error came before MPI started and every rank of an mpirun job meets it alike, so
///   rank 0 says it; the others exit quietly after giving it a moment (mpirun ends the job at the first exit).
/// - communicator: the group the command runs on. With several ranks, the first to fail ends the whole job
///   with MPI_Abort (status 1); the others give rank 0 a moment first, so an error every rank hits is printed once.
func exitWithError(_ message: String, status: Int32 = 1, sameOnEveryRank: Bool = false,
                   communicator: Communicator? = nil) -> Never {
    let line = "dann-dist: error: \(message)"
    if let communicator, communicator.size > 1 {
        if !communicator.isRoot { Thread.sleep(forTimeInterval: 2) }
        fflush(nil)  // every output stream; naming C's stdout is not concurrency-safe in Swift 6
        communicator.abort(line)
    }
    if sameOnEveryRank, let rank = launcherRank(), rank != 0 {
        Thread.sleep(forTimeInterval: 2)
    } else {
        printError(line)
    }
    communicator?.finalize()
    Foundation.exit(status)
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
