import ArgumentParser

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data", abstract: "Not yet implemented.")

    @Argument(parsing: .allUnrecognized) var rest: [String] = []

    func run() throws {
        printError("dann-dist data: not yet implemented")
        throw ExitCode(2)
    }
}
