import Foundation

/// The text form of a plan, as `meshward plan` prints it: a summary line, the settings that
/// change, warnings, then each stage's kernel operations per node.
public struct PlanText {
    public let text: String

    public init(_ document: PlanDocument) {
        var lines: [String] = []
        let summary = document.summary
        let head =
            "cluster \(TerminalText.escaped(document.cluster)) (revision \(document.revision.prefix(12))): "
        let kernelChanges = summary.operations > 0 || !document.generations.isEmpty
        if !document.changes {
            lines.append(head + "no changes")
        } else if !kernelChanges {
            lines.append(head + "no kernel changes; the recorded revision changes" + Self.previous(document))
        } else {
            lines.append(
                head
                    + "\(Self.count(summary.channelsCreated, "channel")) to create, \(summary.channelsRekeyed) to "
                    + "rekey, \(summary.channelsUpdated) to update, \(summary.channelsRemoved) to remove; "
                    + "\(Self.count(summary.operations, "kernel operation")) in "
                    + Self.count(document.stages.count, "stage"))
        }
        for change in document.settingsChanged {
            var line = "  \(TerminalText.escaped(change.setting)) \(change.from) → \(change.to)"
            if let effect = change.effect { line += "; \(effect)" }
            lines.append(line)
        }
        for warning in document.warnings { lines.append("warning: \(TerminalText.escaped(warning))") }
        for stage in document.stages {
            var header = "stage \(stage.stage)"
            if let until = stage.waitsUntil { header += " (after the drain, at \(until.formatted(.iso8601)))" }
            lines.append(header)
            let byNode = Dictionary(grouping: stage.operations, by: \.node)
            for node in byNode.keys.sorted() {
                for operation in byNode[node] ?? [] {
                    lines.append("  \(TerminalText.escaped(node)): \(operation.operation) \(operation.target)")
                }
            }
        }
        for problem in document.unreachable {
            lines.append(
                "unreachable: \(TerminalText.escaped(problem.node)): \(TerminalText.escaped(problem.reason))")
        }
        text = lines.joined(separator: "\n")
    }

    /// `1 channel`, `2 channels`.
    public static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }

    private static func previous(_ document: PlanDocument) -> String {
        guard let previous = document.previousRevision else { return "" }
        return " (recorded: \(previous.prefix(12)))"
    }
}
