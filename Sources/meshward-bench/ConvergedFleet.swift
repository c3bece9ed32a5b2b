import DesiredState
import Foundation
import Kernel
import MeshwardCore
import MeshwardTestSupport
import Reconciler
import Store

/// A fleet as a converged controller finds it: one active generation per channel in the
/// Store (built in memory), and every kernel holding exactly its objects, as Meshward writes
/// them (SAs carry the key; policies the default priority, outbound ones pinning the SPI).
struct ConvergedFleet {
    /// The Store's channels.
    var records: [ChannelID: ChannelRecord]
    /// What each node's kernel holds.
    var observations: [String: NodeObservation]

    /// - Parameter at: the time of the next pass; every generation is an hour older.
    init(intent: FleetIntent, at now: Date) {
        let reqid = Reqid(intent.reqid)
        var records: [ChannelID: ChannelRecord] = [:]
        var sas: [String: [SecurityAssociation]] = [:]
        var policies: [String: [SecurityPolicy]] = [:]
        var spi: UInt32 = SPI.minimumIssued
        var keySource = SeededRandom(seed: 42)
        for channel in intent.channels {
            spi += 1
            let key = KeyMaterial(
                bytes: (0..<channel.cipher.keyLength).map { _ in UInt8(truncatingIfNeeded: keySource.next()) })
            let generation = Generation(
                channel: channel.id, number: 1, spi: SPI(spi), cipher: channel.cipher, key: key, source: channel.source,
                destination: channel.destination, createdAt: now.addingTimeInterval(-3600), state: .active,
                activatedAt: now.addingTimeInterval(-3600))
            records[channel.id] = ChannelRecord(
                id: channel.id, step: .established, stepChangedAt: now, generations: [generation])
            let sa = SecurityAssociation(
                source: channel.source, destination: channel.destination, spi: SPI(spi), reqid: reqid,
                cipher: channel.cipher, key: .material(key))
            sas[channel.id.from, default: []].append(sa)
            sas[channel.id.to, default: []].append(sa)
            for traffic in channel.traffic {
                let selector = PolicySelector(
                    source: IPPrefix(host: channel.source), destination: IPPrefix(host: channel.destination),
                    traffic: traffic)
                policies[channel.id.from, default: []].append(
                    SecurityPolicy(
                        selector: selector, direction: .outbound,
                        template: PolicyTemplate(
                            family: channel.id.family, spi: SPI(spi), reqid: reqid, isOptional: false)
                    ))
                policies[channel.id.to, default: []].append(
                    SecurityPolicy(
                        selector: selector, direction: .inbound,
                        template: PolicyTemplate(
                            family: channel.id.family, spi: nil, reqid: reqid,
                            isOptional: channel.enforcement == .permissive)))
            }
        }
        var observations: [String: NodeObservation] = [:]
        for node in intent.nodes {
            observations[node.name] = NodeObservation(
                securityAssociations: sas[node.name] ?? [], policies: policies[node.name] ?? [])
        }
        self.records = records
        self.observations = observations
    }
}
