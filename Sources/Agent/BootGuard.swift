import Foundation
import Kernel
import MeshwardCore

/// One outbound selector the boot guard protects: traffic from this host's address to a peer's
/// whose channel enforces ESP, with the reqid and priority of the policy Meshward keeps for it.
///
/// Never a key and never an SPI: only what a guard policy needs to match the traffic.
public struct BootGuardEntry: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The reqid of the owned policy (Meshward's, as the controller named it).
    public var reqid: Reqid
    /// This host's address (a host prefix).
    public var local: IPPrefix
    /// The peer's address (a host prefix).
    public var peer: IPPrefix
    /// Which packets between them (ports and protocol), as the channel's selector has them.
    public var traffic: TrafficMatch
    /// The priority of the owned policy, so that the guard sits where the channel's policy sat.
    public var priority: UInt32

    public init(reqid: Reqid, local: IPPrefix, peer: IPPrefix, traffic: TrafficMatch, priority: UInt32) {
        self.reqid = reqid
        self.local = local
        self.peer = peer
        self.traffic = traffic
        self.priority = priority
    }

    /// The selector of the outbound policy: from `local` to `peer`.
    public var selector: PolicySelector { PolicySelector(source: local, destination: peer, traffic: traffic) }

    /// The guard policy for this entry: outbound, a required ESP template with the entry's reqid
    /// and no pinned SPI. No SA exists after a reboot or a flush, so the kernel drops what it
    /// selects (`XfrmOutNoStates`) and never sends it in plaintext; an SA of the same reqid
    /// between the two addresses, once the controller installs one, would encrypt it.
    public var guardPolicy: SecurityPolicy {
        SecurityPolicy(
            selector: selector, direction: .outbound, priority: priority,
            template: PolicyTemplate(family: local.family, spi: nil, reqid: reqid, isOptional: false))
    }

    public var description: String { "\(selector) reqid \(reqid) priority \(priority)" }

    public static func < (lhs: BootGuardEntry, rhs: BootGuardEntry) -> Bool {
        (lhs.reqid.rawValue, lhs.selector, lhs.priority) < (rhs.reqid.rawValue, rhs.selector, rhs.priority)
    }
}

/// The boot guard's list: what the agent keeps in `boot-guard.json`, and how it follows the kernel.
public enum BootGuard {
    /// True when `policy` is a guard policy: outbound, required, no pinned SPI. Meshward's
    /// channels always pin the SPI of their outbound policy, so only a guard lacks one.
    public static func isGuard(_ policy: SecurityPolicy) -> Bool {
        policy.direction == .outbound && policy.template.spi == nil && !policy.template.isOptional
    }

    /// The list after `observation`, a read of the kernel with `reqid`, given the list before it.
    /// Entries of other reqids are kept as they were.
    ///
    /// An owned outbound policy is listed when its channel enforces ESP. The outbound policy
    /// does not show that (it is required with a pinned SPI whatever the enforcement); the
    /// receiver's inbound policy does, and enforcement is one setting for the whole fleet
    /// (`defaults.enforcement`), so this host's own inbound policies from the same peer show it:
    /// a required one means enforced, only optional ones mean permissive (or a channel still
    /// being created, whose peer accepts plaintext too). With no inbound policy from the peer,
    /// an entry listed before stays listed. A guard policy stays listed until the controller
    /// replaces or removes it. A selector with no owned outbound policy leaves the list: the
    /// channel was removed or the kernel lost it; in the second case the guard installed at
    /// the next start covers the selectors still listed when the agent stopped.
    public static func derive(
        from observation: NodeObservation, reqid: Reqid, previous: [BootGuardEntry]
    ) -> [BootGuardEntry] {
        var inbound: [PairKey: Bool] = [:]
        for policy in observation.policies where policy.direction == .inbound && policy.template.reqid == reqid {
            let key = PairKey(local: policy.selector.destination.address, peer: policy.selector.source.address)
            inbound[key] = (inbound[key] ?? false) || !policy.template.isOptional
        }
        let listedBefore = Set(previous.filter { $0.reqid == reqid }.map(\.selector))
        var entries = previous.filter { $0.reqid != reqid }
        for policy in observation.policies where policy.direction == .outbound && policy.template.reqid == reqid {
            let key = PairKey(local: policy.selector.source.address, peer: policy.selector.destination.address)
            let listed: Bool
            if isGuard(policy) {
                listed = true
            } else if let enforced = inbound[key] {
                listed = enforced
            } else {
                listed = listedBefore.contains(policy.selector)
            }
            guard listed else { continue }
            entries.append(
                BootGuardEntry(
                    reqid: reqid, local: policy.selector.source, peer: policy.selector.destination,
                    traffic: policy.selector.traffic, priority: policy.priority))
        }
        return entries.sorted()
    }

    /// The guard policies to install on a kernel that `observation` (with `reqid`) describes:
    /// one per listed selector of that reqid that has no owned outbound policy.
    public static func missingGuards(
        _ entries: [BootGuardEntry], reqid: Reqid, observation: NodeObservation
    ) -> [SecurityPolicy] {
        let present = Set(observation.policies.filter { $0.direction == .outbound }.map(\.selector))
        return entries.filter { $0.reqid == reqid && !present.contains($0.selector) }.map(\.guardPolicy)
    }

    /// The file's contents: a version and the entries.
    struct File: Codable {
        var version: Int
        var entries: [BootGuardEntry]
    }

    /// The version of `boot-guard.json` this release writes and reads.
    static let fileVersion = 1

    /// The contents of `boot-guard.json` for `entries`: what the agent writes, and what `meshward
    /// agent boot-guard` prints for a host that joins.
    public static func encode(_ entries: [BootGuardEntry]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // Encoding these values cannot fail: every field is a string or a number.
        let data = (try? encoder.encode(File(version: fileVersion, entries: entries))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func decode(_ text: String, path: String) throws(AgentError) -> [BootGuardEntry] {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(text.utf8))
        } catch {
            throw .bootGuard(path: path, reason: "is not a boot guard list (\(Self.describe(error)))")
        }
        guard file.version == fileVersion else {
            throw .bootGuard(
                path: path, reason: "has version \(file.version); this release reads version \(fileVersion)")
        }
        for (position, entry) in file.entries.enumerated() {
            guard entry.local.family == entry.peer.family else {
                throw .bootGuard(
                    path: path,
                    reason: "entry \(position) mixes families (local \(entry.local), peer \(entry.peer))")
            }
        }
        return file.entries
    }

    private static func describe(_ error: any Error) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case DecodingError.dataCorrupted(let context), DecodingError.typeMismatch(_, let context),
            DecodingError.valueNotFound(_, let context):
            let place = path(context)
            return (place.isEmpty ? "" : "at \(place): ") + context.debugDescription
        case DecodingError.keyNotFound(let key, let context):
            let place = path(context)
            return "missing '\(key.stringValue)'" + (place.isEmpty ? "" : " at \(place)")
        default:
            return "\(error)"
        }
    }

    /// This host's and a peer's address.
    struct PairKey: Hashable {
        var local: IPAddress
        var peer: IPAddress
    }
}
