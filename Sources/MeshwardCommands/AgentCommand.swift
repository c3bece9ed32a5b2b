import ArgumentParser

/// `meshward agent ...`: the daemon on every host, and the controller-side helpers for it.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the agent that serves a host's kernel to the controller, or prepare its credentials.",
        subcommands: [
            AgentRunCommand.self, AgentCredentialsCommand.self, AgentRevokeCommand.self, AgentWaitReadyCommand.self,
            AgentTokenCommand.self, AgentTokensCommand.self, AgentRevokeTokenCommand.self, AgentBootGuardCommand.self,
        ])
}
