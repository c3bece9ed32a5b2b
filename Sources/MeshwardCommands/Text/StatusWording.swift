import Controller

/// The words of `meshward status`'s text form that tests check without a terminal: durations
/// and the summary header.
public enum StatusWording {
    /// `45s`, `4m`, `3h12m`, `2d3h`: seconds under two minutes, minutes under two hours, hours and
    /// minutes under two days, then days and hours.
    public static func duration(_ seconds: Int) -> String {
        if seconds < 120 { return "\(seconds)s" }
        if seconds < 7_200 { return "\(seconds / 60)m" }
        if seconds < 172_800 { return "\(seconds / 3_600)h\(seconds % 3_600 / 60)m" }
        return "\(seconds / 86_400)d\(seconds % 86_400 / 3_600)h"
    }

    /// `nodes: 3 reachable, 1 unreachable`, `channels: 10 established, 2 draining (12)`,
    /// `drift: 1 channel; overdue rekeys: 0`, `drops: none` or `drops: XfrmInNoStates=4 on db-1`.
    public static func header(_ summary: StatusDocument.Summary) -> [String] {
        let steps = summary.channelsByStep.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        let total = summary.channelsByStep.values.reduce(0, +)
        var lines = [
            "summary:",
            "  nodes: \(summary.nodesReachable) reachable, \(summary.nodesUnreachable) unreachable",
            "  channels: " + (steps.isEmpty ? "none" : steps.joined(separator: ", ") + " (\(total))"),
            "  drifted: \(summary.channelsDrifted); overdue rekeys: \(summary.rekeysOverdue)",
        ]
        if summary.dropCounters.isEmpty {
            lines.append("  drops: none")
        } else {
            lines.append(
                "  drops: "
                    + summary.dropCounters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    .joined(separator: " ") + " on "
                    + summary.nodesWithDrops.map { TerminalText.escaped($0) }.joined(separator: ", "))
        }
        return lines
    }
}
