import ArgumentParser

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "predict", abstract: "Not yet implemented.")

    @Argument(parsing: .allUnrecognized) var rest: [String] = []

    func run() throws {
        printError("dann-dist predict: not yet implemented")
        throw ExitCode(2)
    }
}
