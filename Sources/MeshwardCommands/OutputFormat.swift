import ArgumentParser
import Telemetry

/// How a command prints its result: for people, or as one stable JSON document for pipelines.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// Lines meant for a terminal.
    case text
    /// One JSON document on standard output, documented in docs/cli.md.
    case json
}

extension LogFormat: ExpressibleByArgument {}
