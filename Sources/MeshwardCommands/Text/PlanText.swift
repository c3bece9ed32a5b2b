import Controller
import Foundation

/// The text form of a plan, as `meshward plan` prints it, in the order operators know from
/// terraform: one line per channel (`+` create, `~` rekey or update with the reason and what
/// changes, `-` remove), the settings that change, warnings, then the counts. The kernel
/// operations of each stage follow only when `verbose` (JSON always has them).
///
/// A plan that changes more than `channelLineLimit` channels shows, instead of a line per
/// channel, how many change in each flow and at each node; `verbose` lists every channel still
/// (JSON always does).
public struct PlanText {
    public let text: String

    /// The most channel lines a plan shows without `verbose`.
    public static let channelLineLimit = 200

    /// The line that says no kernel was read (`plan --refresh=false`), or nil when they were.
    static func unreadKernelsNote(_ document: PlanDocument) -> String? {
        guard document.kernelsRead == false else { return nil }
        return "kernels not read (--refresh=false): each is taken to hold what the Store's records say it was given"
    }

    public init(_ document: PlanDocument, verbose: Bool = false) {
        var lines: [String] = []
        let summary = document.summary
        let revision = "revision \(document.revision.prefix(12))"
        let cluster = "cluster \(TerminalText.escaped(document.cluster))"
        guard document.changes else {
            lines.append("\(cluster) (\(revision)): no changes")
            if let note = Self.unreadKernelsNote(document) { lines.append(note) }
            Self.appendProblems(document, to: &lines)
            text = lines.joined(separator: "\n")
            return
        }
        let recorded =
            document.revisionChanged ? document.previousRevision.map { ", recorded \($0.prefix(12))" } ?? "" : ""
        lines.append("\(cluster) (\(revision)\(recorded))")
        if let note = Self.unreadKernelsNote(document) { lines.append(note) }
        if verbose || document.channelChanges.count <= Self.channelLineLimit {
            lines += document.channelChanges.mapInRuns { "  " + Self.line($0) }
        } else {
            Self.appendTallies(document.channelChanges, to: &lines)
        }
        if !document.settingsChanged.isEmpty {
            lines.append("settings:")
            for change in document.settingsChanged {
                var line = "  \(TerminalText.escaped(change.setting)) \(change.from) → \(change.to)"
                if let effect = change.effect { line += "; \(effect)" }
                lines.append(line)
            }
        }
        for warning in document.warnings { lines.append("warning: \(TerminalText.escaped(warning))") }
        if summary.operations > 0 || !document.generations.isEmpty {
            lines.append(
                "plan: \(Self.count(summary.channelsCreated, "channel")) to create, \(summary.channelsRekeyed) to "
                    + "rekey, \(summary.channelsUpdated) to update, \(summary.channelsRemoved) to remove; "
                    + "\(Self.count(summary.operations, "kernel operation")) in "
                    + Self.count(document.stages.count, "stage"))
        } else {
            lines.append("plan: no kernel changes; the recorded revision changes")
        }
        if verbose {
            for stage in document.stages {
                var header = "stage \(stage.stage)"
                if let until = stage.waitsUntil { header += " (after the drain, at \(until.formatted(.iso8601)))" }
                lines.append(header)
                let byNode = Dictionary(grouping: stage.operations, by: \.node)
                // Each node's lines as one block, the nodes' blocks written on every core (from
                // empty at 1,000 nodes, five million lines).
                lines += byNode.keys.sorted().mapInRuns(run: 8) { node in
                    let name = TerminalText.escaped(node)
                    return (byNode[node] ?? []).map { "  \(name): \($0.operation) \($0.target)" }
                        .joined(separator: "\n")
                }
            }
        }
        Self.appendProblems(document, to: &lines)
        text = lines.joined(separator: "\n")
    }

    /// `+ a->b/ipv4`, `~ a->b/ipv4  rekey (cipher-changed): cipher aes-gcm-128 → aes-gcm-256`,
    /// `~ a->b/ipv4  update: traffic any → tcp dport 8080`, `- a->c/ipv4  remove (not in the spec)`.
    static func line(_ change: PlanChannelChange) -> String {
        var line = "\(change.symbol) \(TerminalText.escaped(change.channel))"
        switch change.action {
        case "create": return line
        case "rekey": line += "  rekey" + (change.reason.map { " (\($0))" } ?? "")
        case "remove": line += "  remove" + (change.reason.map { " (\($0))" } ?? "")
        default: line += "  update"
        }
        if !change.differences.isEmpty {
            line +=
                ": "
                + change.differences.map { "\($0.property) \($0.from) → \($0.to)" }.joined(separator: "; ")
        }
        return line
    }

    /// The channel changes counted per flow and per node (a channel counts in each flow that
    /// produces it and at both its nodes), each group on one line:
    /// `  web-app: 120 to create, 2 to remove`.
    static func appendTallies(_ changes: [PlanChannelChange], to lines: inout [String]) {
        lines.append(
            "  \(count(changes.count, "channel")) change (more than \(channelLineLimit)), counted per flow and "
                + "per node; --verbose lists each channel, the JSON always does")
        var byFlow: [String: [String: Int]] = [:]
        var byNode: [String: [String: Int]] = [:]
        for change in changes {
            for flow in change.flows ?? ["(no flow: not in the spec)"] {
                byFlow[flow, default: [:]][change.action, default: 0] += 1
            }
            let nodes = Set([change.from, change.to].compactMap { $0 })
            for node in nodes { byNode[node, default: [:]][change.action, default: 0] += 1 }
        }
        lines.append("flows:")
        for flow in byFlow.keys.sorted() {
            lines.append("  \(TerminalText.escaped(flow)): \(tally(byFlow[flow] ?? [:]))")
        }
        lines.append("nodes:")
        for node in byNode.keys.sorted() {
            lines.append("  \(TerminalText.escaped(node)): \(tally(byNode[node] ?? [:]))")
        }
    }

    /// `120 to create, 2 to remove`: the actions that occur, in the plan line's order.
    static func tally(_ actions: [String: Int]) -> String {
        let named = [("create", "to create"), ("rekey", "to rekey"), ("update", "to update"), ("remove", "to remove")]
        return named.compactMap { action, words in actions[action].map { "\($0) \(words)" } }
            .joined(separator: ", ")
    }

    private static func appendProblems(_ document: PlanDocument, to lines: inout [String]) {
        for problem in document.unreachable {
            lines.append(
                "unreachable: \(TerminalText.escaped(problem.node)): \(TerminalText.escaped(problem.reason))")
        }
    }

    /// `1 channel`, `2 channels`.
    public static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}
