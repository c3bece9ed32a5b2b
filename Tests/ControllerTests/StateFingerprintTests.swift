import Foundation
import Kernel
import MeshwardCore
import Testing

@testable import Controller

/// The fingerprints a saved plan carries are fed to SHA-256 line by line; they must stay the
/// digest of the whole text, so that a plan saved by an earlier release still matches.
@Suite("State fingerprints")
struct StateFingerprintTests {
    @Test("the fleet fingerprint is SHA-256 of its lines joined by newlines, as saved plans hold it")
    func fleetFingerprintIsDigestOfJoinedText() {
        let sa = SecurityAssociation(
            source: IPAddress("198.18.0.1")!, destination: IPAddress("198.18.0.2")!, spi: SPI(0x101), reqid: Reqid(7),
            cipher: .aesGCM256, key: .fingerprint("f"))
        let policy = SecurityPolicy(
            selector: PolicySelector(
                source: IPPrefix(host: sa.source), destination: IPPrefix(host: sa.destination), traffic: .any),
            direction: .outbound,
            template: PolicyTemplate(family: .ipv4, spi: sa.spi, reqid: Reqid(7), isOptional: false))
        let observations = ["web": NodeObservation(securityAssociations: [sa], policies: [policy])]
        let text = [
            "meshward-fleet/1", "node db unreachable", "node web",
            "  sa \(sa.source) -> \(sa.destination) spi \(sa.spi.hex) \(sa.cipher.rawValue) reqid \(sa.reqid)",
            "  \(policy)",
        ].joined(separator: "\n")
        #expect(
            StateFingerprint.fleet(observations: observations, unreachable: ["db": "down"])
                == StateFingerprint.sha256(text))
    }

    @Test("SHA-256 of a text is the standard digest (FIPS 180-2's \"abc\" and empty-string vectors)")
    func sha256KnownAnswers() {
        #expect(
            StateFingerprint.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(StateFingerprint.sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("the Store fingerprint is SHA-256 of its lines joined by newlines, as saved plans hold it")
    func storeFingerprintIsDigestOfJoinedText() {
        let id = ChannelID(from: "web", to: "db", family: .ipv4)
        let record = ChannelRecord(id: id, step: .new, stepChangedAt: Date(timeIntervalSince1970: 5), generations: [])
        let text = ["meshward-store/1", "revision abc", "channel \(id) step new since 5.0"].joined(separator: "\n")
        #expect(StateFingerprint.store(records: [id: record], revision: "abc") == StateFingerprint.sha256(text))
    }

    @Test(
        "the Store's generation lines (both families, numbers of one to three digits, octets 0 and 255, superseded or not) are written as the interpolated text"
    )
    func storeGenerationLinesAreTheInterpolatedText() {
        let id = ChannelID(from: "web", to: "db", family: .ipv6)
        let other = ChannelID(from: "web", to: "db", family: .ipv4)
        func generation(_ channel: ChannelID, _ number: Int, _ source: String, _ destination: String) -> Generation {
            Generation(
                channel: channel, number: number, spi: SPI(UInt32(0x100 * number + 0xab)), cipher: .aesGCM256,
                key: KeyMaterial(bytes: [UInt8](repeating: 2, count: 36)), source: IPAddress(source)!,
                destination: IPAddress(destination)!, createdAt: Date(timeIntervalSince1970: 1_700_000_000.25),
                state: number == 123 ? .active : .retiring,
                supersededAt: number == 123 ? nil : Date(timeIntervalSince1970: 1_700_000_100.5))
        }
        let records = [
            id: ChannelRecord(
                id: id, step: .draining, stepChangedAt: Date(timeIntervalSince1970: 7.5),
                generations: [
                    generation(id, 1, "2001:db8::1", "2001:db8:0:ff::a:2"),
                    generation(id, 10, "2001:db8::1", "2001:db8:0:ff::a:2"),
                    generation(id, 123, "2001:db8::1", "2001:db8:0:ff::a:2"),
                ]),
            other: ChannelRecord(
                id: other, step: .established, stepChangedAt: Date(timeIntervalSince1970: 9),
                generations: [
                    generation(other, 2, "0.0.0.0", "255.255.255.255"),
                    generation(other, 3, "10.9.99.100", "1.20.255.0"),
                ]),
        ]
        #expect(
            StateFingerprint.store(records: records, revision: nil)
                == StateFingerprint.sha256(Self.storeText(records: records, revision: "none")))
    }

    /// The Store fingerprint's text as saved plans hold it, written the plain way: each line
    /// interpolated, the channels in id order.
    static func storeText(records: [ChannelID: ChannelRecord], revision: String) -> String {
        var lines = ["meshward-store/1", "revision \(revision)"]
        for id in records.keys.sorted() {
            let record = records[id]!
            lines.append(
                "channel \(record.id) step \(record.step.rawValue) since \(record.stepChangedAt.timeIntervalSince1970)")
            for generation in record.generations {
                lines.append(
                    "  generation \(generation.number) spi \(generation.spi.hex) \(generation.cipher.rawValue) "
                        + "\(generation.source) -> \(generation.destination) \(generation.state.rawValue) "
                        + "created \(generation.createdAt.timeIntervalSince1970) "
                        + "superseded \(generation.supersededAt?.timeIntervalSince1970 ?? -1)")
            }
        }
        return lines.joined(separator: "\n")
    }

    @Test("an SA's line (both families, reqids and SPIs of every width) is written as the interpolated text")
    func saLinesAreTheInterpolatedText() {
        var observation = NodeObservation()
        for (index, (source, destination)) in [
            ("198.18.0.1", "198.19.255.254"), ("0.0.0.0", "255.0.10.100"), ("2001:db8::1", "2001:db8:0:ff::a:2"),
        ].enumerated() {
            for (spi, reqid) in [(UInt32(0x100), UInt32(0)), (0xFFFF_FFFF, 0x4d57), (0xab_cdef, 0xFFFF_FFFF)] {
                observation.securityAssociations.append(
                    SecurityAssociation(
                        source: IPAddress(source)!, destination: IPAddress(destination)!,
                        spi: SPI(spi &+ UInt32(index)), reqid: Reqid(reqid), cipher: .aesGCM256,
                        key: .fingerprint("f")))
            }
        }
        let observations = ["web": observation]
        #expect(
            StateFingerprint.fleet(observations: observations, unreachable: [:])
                == StateFingerprint.sha256(Self.fleetText(observations: observations, unreachable: [:])))
    }

    /// Node names whose order by rank differs from their order of appearance, with upper case,
    /// digits and a shared prefix (so that "n10" sorts before "n9").
    private static let names = ["n9", "n10", "Z", "a", "n1", "web", "db-2", "db-10", "ä", "n100"]

    @Test("channel ids sorted by their names' ranks come in ChannelID's own order, both families")
    func sortedIDsFollowChannelIDOrder() {
        var ids: [ChannelID] = []
        for from in Self.names {
            for to in Self.names where to != from {
                ids.append(ChannelID(from: from, to: to, family: .ipv6))
                ids.append(ChannelID(from: from, to: to, family: .ipv4))
            }
        }
        ids.reverse()
        #expect(StateFingerprint.sortedIDs(ids) == ids.sorted())
        #expect(StateFingerprint.sortedIDs(Set(ids)) == ids.sorted())
    }

    @Test(
        "the Store fingerprint of 12,000 channels, rendered in runs on every core, is the digest of their lines in id order"
    )
    func storeFingerprintOfManyRunsIsDigestOfJoinedText() {
        var records: [ChannelID: ChannelRecord] = [:]
        var index = 0
        for from in 0..<110 {
            for to in 0..<110 where to != from && records.count < 12_000 {
                index += 1
                let id = ChannelID(from: "node-\(from)", to: "node-\(to)", family: .ipv4)
                let generation = Generation(
                    channel: id, number: 1, spi: SPI(UInt32(0x100 + index)), cipher: .aesGCM128,
                    key: KeyMaterial(bytes: [UInt8](repeating: 1, count: 20)),
                    source: IPAddress("198.18.0.\(from % 250 + 1)")!,
                    destination: IPAddress("198.19.0.\(to % 250 + 1)")!,
                    createdAt: Date(timeIntervalSince1970: Double(index) / 3), state: .active)
                records[id] = ChannelRecord(
                    id: id, step: .established, stepChangedAt: Date(timeIntervalSince1970: Double(index)),
                    generations: [generation])
            }
        }
        #expect(
            StateFingerprint.store(records: records, revision: "r")
                == StateFingerprint.sha256(Self.storeText(records: records, revision: "r")))
    }

    @Test(
        "the fleet fingerprint of 50 nodes (several waves), objects out of order, is the digest of the sorted joined text"
    )
    func fleetFingerprintOfManyNodesIsDigestOfJoinedText() {
        var observations: [String: NodeObservation] = [:]
        for node in 0..<50 {
            var observation = NodeObservation()
            for peer in (0..<30).reversed() {
                let sa = SecurityAssociation(
                    source: IPAddress("198.18.1.\(peer + 1)")!, destination: IPAddress("198.18.2.\(node + 1)")!,
                    spi: SPI(UInt32(0x200 + peer * 7)), reqid: Reqid(7), cipher: .aesGCM256, key: .fingerprint("f"))
                observation.securityAssociations.append(sa)
                observation.policies.append(
                    SecurityPolicy(
                        selector: PolicySelector(
                            source: IPPrefix(host: sa.source), destination: IPPrefix(host: sa.destination),
                            traffic: .any),
                        direction: peer.isMultiple(of: 2) ? .inbound : .outbound,
                        template: PolicyTemplate(family: .ipv4, spi: nil, reqid: Reqid(7), isOptional: false)))
            }
            observations["n\(node)"] = observation
        }
        let unreachable = ["n7": "down", "x": "down"]
        #expect(
            StateFingerprint.fleet(observations: observations, unreachable: unreachable)
                == StateFingerprint.sha256(Self.fleetText(observations: observations, unreachable: unreachable)))
    }

    /// The fleet fingerprint's text as saved plans hold it, written the plain way: each node's
    /// SA lines and policy lines interpolated and sorted as strings.
    static func fleetText(observations: [String: NodeObservation], unreachable: [String: String]) -> String {
        var lines = ["meshward-fleet/1"]
        for node in Set(observations.keys).union(unreachable.keys).sorted() {
            guard let observation = observations[node] else {
                lines.append("node \(node) unreachable")
                continue
            }
            lines.append("node \(node)")
            lines += observation.securityAssociations.map {
                "  sa \($0.source) -> \($0.destination) spi \($0.spi.hex) \($0.cipher.rawValue) reqid \($0.reqid)"
            }.sorted()
            lines += observation.policies.map { "  \($0)" }.sorted()
        }
        return lines.joined(separator: "\n")
    }

    /// Policies of every shape the description has: both families, host and wider prefixes,
    /// every traffic kind (ports on either side, both, none), the three directions, priorities
    /// of one to ten digits, templates with and without a pinned SPI, optional and required.
    static func variedPolicies() -> [SecurityPolicy] {
        let prefixes: [(IPPrefix, IPPrefix, AddressFamily)] = [
            (IPPrefix(host: IPAddress("198.18.0.1")!), IPPrefix(host: IPAddress("198.19.255.254")!), .ipv4),
            (
                IPPrefix(address: IPAddress("198.18.0.0")!, length: 15)!,
                IPPrefix(address: IPAddress("198.18.4.0")!, length: 24)!, .ipv4
            ),
            (IPPrefix(host: IPAddress("2001:db8::1")!), IPPrefix(host: IPAddress("2001:db8:0:ff::a:2")!), .ipv6),
            (
                IPPrefix(address: IPAddress("2001:db8::")!, length: 32)!,
                IPPrefix(address: IPAddress("2001:db8:1::")!, length: 48)!, .ipv6
            ),
        ]
        let traffic: [TrafficMatch] = [
            .any, TrafficMatch(transport: .tcp, destinationPort: 8080), TrafficMatch(transport: .udp, sourcePort: 53),
            TrafficMatch(transport: .sctp, sourcePort: 1, destinationPort: 65535), TrafficMatch(transport: .icmp),
            TrafficMatch(transport: .icmpv6), TrafficMatch(transport: .tcp),
        ]
        var policies: [SecurityPolicy] = []
        for (source, destination, family) in prefixes {
            for match in traffic {
                for direction in [PolicyDirection.inbound, .outbound, .forward] {
                    let templates: [(priority: UInt32, spi: SPI?)] = [
                        (0, SPI(0x1)), (1000, nil), (.max, SPI(0xFFFF_FFFF)),
                    ]
                    for (priority, spi) in templates {
                        for isOptional in [false, true] {
                            policies.append(
                                SecurityPolicy(
                                    selector: PolicySelector(source: source, destination: destination, traffic: match),
                                    direction: direction, priority: priority,
                                    template: PolicyTemplate(
                                        family: family, spi: spi, reqid: Reqid(UInt32(policies.count)),
                                        isOptional: isOptional)))
                        }
                    }
                }
            }
        }
        return policies
    }

    @Test("a policy's line is written byte for byte as its description, for every shape of policy")
    func policyLineIsItsDescription() {
        for policy in Self.variedPolicies() {
            var line: [UInt8] = []
            StateFingerprint.appendDescription(of: policy, to: &line)
            #expect(String(decoding: line, as: UTF8.self) == policy.description)
        }
    }

    @Test("the fleet fingerprint of policies of every shape and SAs of both families is the digest of the sorted lines")
    func fleetFingerprintOfVariedObjectsIsDigestOfSortedText() {
        let policies = Self.variedPolicies()
        let associations = (0..<40).map { (index: Int) -> SecurityAssociation in
            let even = index.isMultiple(of: 2)
            let source: String = even ? "198.18.0.\(index + 1)" : "2001:db8::\(index + 1)"
            let destination: String = even ? "198.19.0.\(40 - index)" : "2001:db8:1::\(index)"
            return SecurityAssociation(
                source: IPAddress(source)!, destination: IPAddress(destination)!,
                spi: SPI(UInt32(0x100 + (index * 37) % 40)), reqid: Reqid(UInt32(index % 3)),
                cipher: index.isMultiple(of: 3) ? .aesGCM128 : .aesGCM256, key: .fingerprint("f"))
        }
        let observations = [
            "a": NodeObservation(securityAssociations: associations.reversed(), policies: policies.reversed()),
            "b": NodeObservation(securityAssociations: associations, policies: policies),
        ]
        #expect(
            StateFingerprint.fleet(observations: observations, unreachable: [:])
                == StateFingerprint.sha256(Self.fleetText(observations: observations, unreachable: [:])))
    }
}
