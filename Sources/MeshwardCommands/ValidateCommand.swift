import ArgumentParser
import DesiredState
import Foundation
import Reconciler

/// `meshward validate SPEC...`: checks a spec and prints every problem, or a one-line summary.
struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a spec and report every problem as file:line:column: message.",
        discussion: """
            Exits 0 when the spec is valid (warnings are printed above the summary), 1 otherwise.
            With --output json prints {"valid", "summary", "diagnostics"}; see docs/cli.md.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(
        help: ArgumentHelp(
            "Spec files or directories (every *.yaml, *.yml, *.json in a directory).",
            valueName: "spec"))
    var specs: [String]

    func run() async throws {
        let result = SpecLoader().load(paths: specs)
        switch global.output {
        case .text: printText(result)
        case .json: try printJSON(result)
        }
        if !result.isValid { throw ExitCode.failure }
    }

    private func printText(_ result: SpecLoadResult) {
        var errorOutput = StandardError()
        for diagnostic in result.diagnostics {
            // Escaped: a diagnostic may quote an unknown key or a value that holds hidden characters.
            let line = TerminalText.escaped(lines: diagnostic.description)
            if result.isValid {
                print(line)
            } else {
                print(line, to: &errorOutput)
            }
        }
        guard let intent = result.intent else {
            let count = result.errors.count
            print("invalid: \(count) error\(count == 1 ? "" : "s")", to: &errorOutput)
            return
        }
        let summary = ValidationSummary(intent)
        print(
            "valid: cluster \(TerminalText.escaped(summary.cluster)), \(summary.nodes) node\(summary.nodes == 1 ? "" : "s"), "
                + "\(summary.flows) flow\(summary.flows == 1 ? "" : "s"), \(summary.channels) "
                + "channel\(summary.channels == 1 ? "" : "s") (revision \(intent.shortRevision))")
        if global.verbose {
            for channel in intent.channels { print("  \(channel)") }
        }
    }

    private func printJSON(_ result: SpecLoadResult) throws {
        let document = ValidationReport(
            valid: result.isValid, summary: result.intent.map(ValidationSummary.init),
            diagnostics: result.diagnostics)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(document)
        print(String(decoding: data, as: UTF8.self))
    }
}

/// The JSON document `meshward validate --output json` prints.
struct ValidationReport: Encodable {
    let valid: Bool
    let summary: ValidationSummary?
    let diagnostics: [Diagnostic]

    enum CodingKeys: String, CodingKey { case valid, summary, diagnostics }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(valid, forKey: .valid)
        try container.encode(summary, forKey: .summary)
        try container.encode(diagnostics, forKey: .diagnostics)
    }
}

/// The counts and revision of a valid spec.
struct ValidationSummary: Encodable {
    let cluster: String
    let reqid: UInt32
    let nodes: Int
    let flows: Int
    let channels: Int
    let revision: String

    init(_ intent: FleetIntent) {
        cluster = intent.cluster
        reqid = intent.reqid
        nodes = intent.nodes.count
        flows = intent.flowCount
        channels = intent.channels.count
        revision = intent.revision
    }
}

/// Standard error as a `TextOutputStream`.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandle.standardError.write(Data(string.utf8))
    }
}
