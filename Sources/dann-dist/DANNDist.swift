import ArgumentParser
import DANN
import Foundation

@main
struct DANNDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dann-dist",
        abstract: "Domain-adversarial neural network trainer (single process or MPI ranks).",
        subcommands: [Train.self, Eval.self, Predict.self, Bench.self, DataCommand.self, MPISelfTest.self],
        defaultSubcommand: Train.self
    )
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

func printError(_ line: String) {
    var stderr = StandardError()
    print(line, to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
