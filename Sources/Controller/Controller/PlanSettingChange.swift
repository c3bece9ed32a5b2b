import DesiredState
import Foundation
import Kernel
import MeshwardCore
import Reconciler

/// A fleet-wide setting whose value in the spec differs from the one the last `apply`
/// recorded: `rekey.every 24h -> 1h`. These change no kernel object by themselves, but they
/// are changes all the same (the next rekey moves), so `plan` shows them.
public struct PlanSettingChange: Codable, Sendable, Equatable {
    /// `rekey.every`, `rekey.packets`, `drain`, `cluster`, `reqid`, `endpoint of NODE`.
    public var setting: String
    /// The recorded value (`none` when unset).
    public var from: String
    /// The spec's value.
    public var to: String
    /// What the change does, when that is not obvious (`next rekeys move earlier`).
    public var effect: String?

    static func changes(from settings: ControllerSettings, to intent: FleetIntent) -> [PlanSettingChange] {
        var changes: [PlanSettingChange] = []
        func add(_ setting: String, _ old: String, _ new: String, effect: String? = nil) {
            if old != new { changes.append(PlanSettingChange(setting: setting, from: old, to: new, effect: effect)) }
        }
        let first = intent.channels.first
        if let every = first?.rekey.every {
            let effect =
                every < settings.rekeyEvery
                ? "next rekeys move earlier" : every > settings.rekeyEvery ? "next rekeys move later" : nil
            add(
                "rekey.every", format(seconds: settings.rekeyEvery.timeInterval), format(seconds: every.timeInterval),
                effect: effect)
        }
        if first != nil {
            add(
                "rekey.packets", settings.rekeyPackets.map(String.init) ?? "none",
                first?.rekey.packets.map(String.init) ?? "none")
        }
        if let drain = first?.drain {
            add("drain", format(seconds: settings.drain.timeInterval), format(seconds: drain.timeInterval))
        }
        add("cluster", settings.cluster, intent.cluster)
        add("reqid", Reqid(settings.reqid).description, Reqid(intent.reqid).description)
        for node in intent.nodes {
            if let recorded = settings.endpoints[node.name] {
                add("endpoint of \(node.name)", recorded.description, node.endpoint.description)
            }
        }
        return changes
    }

    /// `1h30m`, `24h`, `5s`, `250ms`: the spec's spelling of a duration in seconds, in hours at
    /// most (a rekey interval reads `24h`, as specs write it, rather than `1d`).
    static func format(seconds: Double) -> String {
        var milliseconds = Int64((seconds * 1000).rounded())
        guard milliseconds > 0 else { return "0s" }
        var text = ""
        for (suffix, size) in [("h", Int64(3_600_000)), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            let count = milliseconds / size
            if count > 0 {
                text += "\(count)\(suffix)"
                milliseconds -= count * size
            }
        }
        return text
    }
}
