import ArgumentParser

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Not yet implemented.")

    @Argument(parsing: .allUnrecognized) var rest: [String] = []

    func run() throws {
        printError("dann-dist eval: not yet implemented")
        throw ExitCode(2)
    }
}
