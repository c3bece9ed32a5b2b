import Controller
import Foundation

/// The text form of a status document.
public struct StatusText {
    /// The lines, joined by newlines.
    public let text: String

    public init(_ document: StatusDocument) {
        var lines = [
            "cluster \(TerminalText.escaped(document.cluster ?? "?")) (revision \(document.revision?.prefix(12) ?? "?"))"
        ]
        if let summary = document.summary { lines.append(contentsOf: Self.header(summary)) }
        if let lease = document.lease {
            lines.append(
                "lease: led by \(TerminalText.escaped(lease.holder)) (epoch \(lease.epoch)) since "
                    + "\(lease.acquiredAt.formatted(.iso8601)), expires \(lease.expiresAt.formatted(.iso8601))")
        } else {
            lines.append("lease: no controller leads")
        }
        lines.append("nodes:")
        for node in document.nodes {
            var line = "  \(TerminalText.escaped(node.name)) [\(TerminalText.escaped(node.endpoint))] "
            line +=
                node.reachable
                ? "reachable, \(node.securityAssociations) SAs, \(node.policies) policies" : "UNREACHABLE"
            if let error = node.error { line += ": \(TerminalText.escaped(error))" }
            if !node.dropCounters.isEmpty {
                line +=
                    "; drops: "
                    + node.dropCounters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                    .joined(separator: " ")
            }
            lines.append(line)
            if let agent = node.agent {
                lines.append("    " + Self.agent(agent))
            } else if let watch = node.watch {
                lines.append("    " + Self.watch(watch))
            }
        }
        lines.append("channels:")
        for channel in document.channels {
            var line = "  \(TerminalText.escaped(channel.channel)) \(channel.step)"
            if let generation = channel.generation, let spi = channel.spi {
                line += " gen \(generation) spi \(spi) \(channel.cipher ?? "")"
            }
            if let age = channel.keyAgeSeconds { line += " key age \(Self.duration(age))" }
            if let seconds = channel.rekeyInSeconds {
                line +=
                    seconds < 0 ? " rekey overdue \(Self.duration(-seconds))" : " rekey in \(Self.duration(seconds))"
            }
            if let until = channel.drainUntil {
                let left = Int(until.timeIntervalSince(document.observedAt).rounded(.up))
                line +=
                    " draining until \(Self.timestamp(until))"
                    + (left > 0 ? " (\(Self.duration(left)) left)" : " (drain over; the next run removes it)")
            }
            if let outbound = channel.outbound { line += " out " + Self.counters(outbound) }
            if let inbound = channel.inbound { line += " in " + Self.counters(inbound) }
            if channel.drift {
                line += " DRIFT: " + channel.driftDetail.map { TerminalText.escaped($0) }.joined(separator: "; ")
            }
            lines.append(line)
        }
        text = lines.joined(separator: "\n")
    }

    static func timestamp(_ date: Date) -> String { date.formatted(.iso8601) }

    static func duration(_ seconds: Int) -> String {
        StatusWording.duration(seconds)
    }

    /// `12 packets 1.5 KiB, first used 2026-...` (swanctl's `bytes_in (packets_in)` in words).
    static func counters(_ counters: StatusDocument.SACounterReport) -> String {
        var text = "\(counters.packets) packet\(counters.packets == 1 ? "" : "s") \(counters.bytes) bytes"
        if let used = counters.firstUsed { text += " (first used \(Self.timestamp(used)))" }
        return text
    }

    /// `agent 198.18.1.10:7443, TLSv1.3 X25519MLKEM768, certificate expires 2027-..., boot 6f1c...,
    /// last contact 2026-...` (the TLS only when this status reached the agent).
    static func agent(_ agent: StatusDocument.AgentStatus) -> String {
        var parts = ["agent \(TerminalText.escaped(agent.address))"]
        if let tls = agent.tls { parts.append("\(tls.protocol) \(tls.keyExchange)") }
        parts.append("certificate expires " + (agent.certificateExpires.map(Self.timestamp) ?? "unknown"))
        parts.append("boot " + (agent.bootID.map { TerminalText.escaped($0) } ?? "unknown"))
        parts.append(
            "last contact "
                + (agent.lastContact.map { Self.timestamp($0) + (agent.live ? " (now)" : " (recorded)") } ?? "never"))
        if let watch = agent.watch { parts.append(Self.watch(watch)) }
        return parts.joined(separator: ", ")
    }

    /// `watch live, last change 2026-..., 1 snapshot, 0 resumes (recorded 2026-...)`: the end of
    /// an agent's line, and the line of its own under a `local` or `netns:` node.
    static func watch(_ watch: StatusDocument.WatchStatus) -> String {
        var text = "watch \(TerminalText.escaped(watch.state))"
        if let change = watch.lastChange { text += ", last change \(Self.timestamp(change))" }
        text += ", \(watch.snapshots) snapshot\(watch.snapshots == 1 ? "" : "s")"
        if watch.digestMismatches > 0 { text += " (\(watch.digestMismatches) forced by a digest)" }
        text +=
            ", \(watch.resumes) resume\(watch.resumes == 1 ? "" : "s") (recorded \(Self.timestamp(watch.recordedAt)))"
        return text
    }

    /// The summary lines at the top of the text form.
    static func header(_ summary: StatusDocument.Summary) -> [String] {
        StatusWording.header(summary)
    }
}
