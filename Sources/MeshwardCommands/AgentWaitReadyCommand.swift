import Agent
import ArgumentParser
import Foundation

/// `meshward agent wait-ready`: returns once the controller has marked every channel of this
/// host's node established for the current boot, so a script (or a unit ordered after the
/// agent) starts with its traffic protected.
struct AgentWaitReadyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait-ready",
        abstract: "Wait until the controller has marked every channel of this node established for this boot.")

    @Option(name: .customLong("agent-dir"), help: ArgumentHelp("The agent directory.", valueName: "dir"))
    var agentDirectory = AgentDirectory.defaultPath

    @Option(
        name: .long, help: ArgumentHelp("Give up after this long, e.g. 30s, 2m.", valueName: "duration"),
        transform: Self.timeout(from:))
    var timeout: Duration = .seconds(120)

    static func timeout(from text: String) throws -> Duration {
        try CommandSupport.positiveDuration(text, option: "--timeout")
    }

    func run() async throws {
        let directory = AgentDirectory(path: agentDirectory)
        let boot = HostFacts.bootID
        let deadline = ContinuousClock.now + timeout
        try await CommandSupport.reportingErrors(output: .text) {
            while true {
                if try directory.readReadyBoot() == boot {
                    print("ready: the controller marked every channel established for boot \(boot)")
                    return
                }
                guard ContinuousClock.now < deadline else {
                    throw AgentWaitError(
                        message:
                            "the controller has not marked this node ready for boot \(boot) within \(timeout); "
                            + "check that `meshward reconcile` runs and reaches this agent")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
}

struct AgentWaitError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
