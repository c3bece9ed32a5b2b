import Kernel
import MeshwardCore

/// A packet as it leaves the sender's IPsec output path.
enum Transmission: Sendable, Hashable {
    /// No transform applied.
    case plaintext
    /// ESP through the sender's SA: what the receiver needs to find and check its SA.
    case esp(spi: SPI, sequence: UInt64, cipher: Cipher, keyFingerprint: String)
    /// The sender's kernel dropped it.
    case dropped(XfrmStatistic)
}

/// The addresses, protocol and ports of one packet: what selectors look at.
struct PacketHeader: Sendable, Hashable {
    var source: IPAddress
    var destination: IPAddress
    var transport: TransportProtocol
    var sourcePort: UInt16?
    var destinationPort: UInt16?
}

extension SimulatedNode {
    /// The policy of `direction` that takes `header`: the lowest priority value, then the
    /// earliest inserted.
    func governingPolicy(_ direction: PolicyDirection, for header: PacketHeader) -> SimulatedPolicy? {
        var best: SimulatedPolicy?
        for policy in policyDatabase.values where policy.direction == direction {
            guard
                policy.matches(
                    source: header.source, destination: header.destination, transport: header.transport,
                    sourcePort: header.sourcePort, destinationPort: header.destinationPort
                )
            else { continue }
            if let current = best, !policy.precedes(current) { continue }
            best = policy
        }
        return best
    }

    /// The SA an outbound template chooses: with a pinned SPI only that SA (matching source,
    /// destination and reqid); without one the newest SA between the addresses with the
    /// template's reqid.
    func outboundAssociation(for policy: SimulatedPolicy, header: PacketHeader) -> SAIdentifier? {
        let source = policy.templateSource.isUnspecified ? header.source : policy.templateSource
        let destination = policy.templateDestination.isUnspecified ? header.destination : policy.templateDestination
        if let spi = policy.templateSPI, spi.rawValue != 0 {
            let identifier = SAIdentifier(destination: destination, spi: spi)
            guard let association = securityAssociationDatabase[identifier], association.source == source,
                association.reqid == policy.templateReqid
            else { return nil }
            return identifier
        }
        var newest: SimulatedSecurityAssociation?
        for association in securityAssociationDatabase.values
        where association.destination == destination && association.source == source
            && association.reqid == policy.templateReqid
        {
            if let current = newest, current.insertionOrder > association.insertionOrder { continue }
            newest = association
        }
        return newest?.identifier
    }

    /// The sender's output path: the outbound policy, its template, the SA it chooses.
    mutating func transmit(_ header: PacketHeader, now: UInt64) -> Transmission {
        guard let policy = governingPolicy(.outbound, for: header) else { return .plaintext }
        guard let identifier = outboundAssociation(for: policy, header: header),
            var association = securityAssociationDatabase[identifier]
        else {
            if policy.templateIsOptional { return .plaintext }
            count(.outNoStates)
            return .dropped(.outNoStates)
        }
        association.lastSentSequence += 1
        association.count(bytes: SimulatedFleetState.bytesPerPacket, now: now)
        securityAssociationDatabase[identifier] = association
        return .esp(
            spi: association.spi, sequence: association.lastSentSequence, cipher: association.cipher,
            keyFingerprint: association.keyFingerprint
        )
    }

    /// The receiver's input path: SA lookup by (destination, SPI), replay check, key check,
    /// then the inbound policy check.
    mutating func accept(_ transmission: Transmission, header: PacketHeader, now: UInt64) -> PacketOutcome {
        var decryptedBy: SimulatedSecurityAssociation?
        switch transmission {
        case .dropped(let statistic):
            return .dropped(statistic)
        case .plaintext:
            break
        case .esp(let spi, let sequence, let cipher, let keyFingerprint):
            let identifier = SAIdentifier(destination: header.destination, spi: spi)
            guard var association = securityAssociationDatabase[identifier] else {
                count(.inNoStates)
                return .dropped(.inNoStates)
            }
            guard association.replay.admits(sequence) else {
                count(.inStateSequenceError)
                return .dropped(.inStateSequenceError)
            }
            guard association.keyFingerprint == keyFingerprint, association.cipher == cipher else {
                count(.inStateProtoError)
                return .dropped(.inStateProtoError)
            }
            association.replay.record(sequence)
            association.count(bytes: SimulatedFleetState.bytesPerPacket, now: now)
            securityAssociationDatabase[identifier] = association
            decryptedBy = association
        }
        if let policy = governingPolicy(.inbound, for: header), !policy.templateIsOptional {
            let satisfied =
                decryptedBy.map { association in
                    (policy.templateReqid.rawValue == 0 || association.reqid == policy.templateReqid)
                        && (policy.templateSPI.map { $0.rawValue == 0 || $0 == association.spi } ?? true)
                } ?? false
            guard satisfied else {
                count(.inTemplateMismatch)
                return .dropped(.inTemplateMismatch)
            }
        }
        return decryptedBy.map { .deliveredEncrypted(spi: $0.spi) } ?? .deliveredPlaintext
    }
}
