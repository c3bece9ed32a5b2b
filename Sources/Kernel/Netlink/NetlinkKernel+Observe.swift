import Logging
import MeshwardCore

extension NetlinkKernel {
    /// Dumps the SAs (`XFRM_MSG_GETSA`) and policies (`XFRM_MSG_GETPOLICY`) and keeps only
    /// Meshward's: SAs with `reqid` (reported with their key bytes and lifetime counters) and
    /// policies whose single ESP transport template carries it. Foreign ESP SAs contribute
    /// their (destination, SPI) to `foreignSPIs`; foreign policies are never reported.
    /// Per-socket and non-ESP objects are skipped. `statistics` is the node namespace's
    /// `xfrm_stat`.
    ///
    /// When the kernel is watched, the dump also resynchronises the watch's model, and the
    /// observation carries the position it matches.
    ///
    /// Throws `KernelError.transport` when a dump fails (with the errno and the kernel's text)
    /// and `KernelError.observationFailed` when the kernel's reply cannot be decoded.
    public func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        if let watch = currentWatch { return try await observeWatched(watch, deadline: deadline) }
        let node = self.node
        let reqid = self.reqid
        let logger = self.logger
        return try await perform(until: deadline) { session in
            try Self.observe(session: session, node: node, reqid: reqid, logger: logger)
        }
    }

    /// The observation itself, on the kernel's queue; it also refreshes the ledger.
    static func observe(session: NetlinkSession, node: String, reqid: Reqid, logger: Logger) throws -> NodeObservation {
        let exchange = session.exchange
        let saMessages = try dump(exchange, node: node, operation: "dump SAs (XFRM_MSG_GETSA)") { sequence in
            var buffer = NetlinkBuffer(capacity: NetlinkHeader.size)
            XfrmCodec.appendDumpSAs(sequence: sequence, into: &buffer)
            return buffer.bytes
        }
        let policyMessages = try dump(exchange, node: node, operation: "dump policies (XFRM_MSG_GETPOLICY)") {
            sequence in
            var buffer = NetlinkBuffer(capacity: NetlinkHeader.size)
            XfrmCodec.appendDumpPolicies(sequence: sequence, into: &buffer)
            return buffer.bytes
        }

        var observation = NodeObservation()
        do {
            for message in saMessages where message.header.type == XfrmCodec.newSA {
                let record = try XfrmCodec.decodeSA(message.payload)
                guard record.isESP else { continue }
                guard record.reqid == reqid else {
                    observation.foreignSPIs.insert(record.identifier)
                    continue
                }
                switch record.securityAssociation() {
                case .success(let sa):
                    observation.securityAssociations.append(sa)
                case .failure(let problem):
                    // Carries our reqid but is nothing Meshward writes: leave it alone, and
                    // keep its SPI out of the ones Meshward issues.
                    observation.foreignSPIs.insert(record.identifier)
                    logger.warning(
                        "SA with Meshward's reqid is not one Meshward writes; leaving it alone",
                        metadata: ["node": "\(node)", "sa": "\(record.identifier)", "reason": "\(problem)"])
                }
            }
            var foreignPolicies: Set<PolicyIdentifier> = []
            for message in policyMessages where message.header.type == XfrmCodec.newPolicy {
                let record = try XfrmCodec.decodePolicy(message.payload)
                guard XfrmCodec.direction(number: record.directionNumber) != nil else { continue }
                if case .success(let policy) = record.securityPolicy(), policy.template.reqid == reqid {
                    observation.policies.append(policy)
                    continue
                }
                if let identifier = record.identifier { foreignPolicies.insert(identifier) }
                if record.mentions(reqid), case .failure(let problem) = record.securityPolicy() {
                    logger.warning(
                        "policy with Meshward's reqid is not one Meshward writes; leaving it alone",
                        metadata: ["node": "\(node)", "reason": "\(problem)"])
                }
            }
            session.ledger.record(
                ownedSAs: Set(observation.securityAssociations.map(\.identifier)),
                ownedPolicies: Set(observation.policies.map(\.identifier)),
                foreignPolicies: foreignPolicies)
        } catch let error as NetlinkDecodingError {
            throw KernelError.observationFailed(node: node, reason: error.description)
        }
        observation.securityAssociations.sort { $0.identifier < $1.identifier }
        observation.policies.sort { $0.identifier < $1.identifier }
        do {
            observation.statistics = try XfrmStatistics.read(descriptor: session.statisticsDescriptor)
        } catch {
            throw KernelError.transport(
                node: node, operation: "read xfrm_stat", errno: error.errno, message: error.description)
        }
        logger.debug(
            "observed",
            metadata: [
                "node": "\(node)", "sa.count": "\(observation.securityAssociations.count)",
                "policy.count": "\(observation.policies.count)",
                "foreign.spi.count": "\(observation.foreignSPIs.count)",
            ])
        return observation
    }

    private static func dump(
        _ exchange: NetlinkExchange, node: String, operation: String,
        request: (UInt32) -> [UInt8]
    ) throws -> [NetlinkMessage] {
        do {
            return try exchange.dump(request)
        } catch {
            throw KernelError.transport(node: node, operation: operation, errno: error.errno, message: error.message)
        }
    }
}
