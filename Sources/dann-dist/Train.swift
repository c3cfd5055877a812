import ArgumentParser

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Train a DANN.")

    func run() throws {
        printError("dann-dist train: not yet implemented")
        throw ExitCode(2)
    }
}
