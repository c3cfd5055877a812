import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Not yet implemented.")

    @Argument(parsing: .allUnrecognized) var rest: [String] = []

    func run() throws {
        printError("dann-dist bench: not yet implemented")
        throw ExitCode(2)
    }
}
