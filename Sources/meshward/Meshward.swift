import ArgumentParser

@main
struct Meshward: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshward",
        abstract: "Keeps IPsec configured on every node of a fleet from a declared spec."
    )
}
