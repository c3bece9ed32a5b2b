import Kernel
import MeshwardCore

extension SimulatedFleetState {
    /// Sends one packet from `node` to `destination` through both kernels' IPsec paths and says
    /// what became of it.
    ///
    /// The full path: the sender's outbound policy (lowest priority value wins, then the
    /// earliest inserted) and its template choose the SA (a pinned SPI names it; otherwise the
    /// newest SA between the addresses with the template's reqid); no SA for a required
    /// template drops the packet (`XfrmOutNoStates`), for an optional one it leaves in
    /// plaintext; no policy sends plaintext. On the receiver, ESP is looked up by (destination,
    /// SPI) (`XfrmInNoStates`), checked against the replay window (`XfrmInStateSeqError`) and
    /// the sender's key (`XfrmInStateProtoError`); then a matching inbound policy with a
    /// required template demands that the packet came through an SA of the template's reqid
    /// (`XfrmInTmplMismatch`). Both SAs count the packet (`bytesPerPacket` bytes); the node
    /// that drops it counts the drop in its statistics.
    ///
    /// The source address is the sender's first address of the destination's family.
    public mutating func send(
        from node: String, to destination: IPAddress, transport: TransportProtocol = .udp,
        sourcePort: UInt16? = nil, destinationPort: UInt16? = nil
    ) -> PacketOutcome {
        switch transmit(
            from: node, to: destination, transport: transport, sourcePort: sourcePort,
            destinationPort: destinationPort)
        {
        case .ended(let outcome): return outcome
        case .inFlight(let packet): return deliver(packet)
        }
    }

    /// The first half of `send`: the packet goes through the sender's output path only and is
    /// left in flight (or ends there, dropped by the sender or undeliverable). The sender's SA
    /// counts it now.
    public mutating func transmit(
        from node: String, to destination: IPAddress, transport: TransportProtocol = .udp,
        sourcePort: UInt16? = nil, destinationPort: UInt16? = nil
    ) -> PacketDeparture {
        guard let sender = nodes[node] else {
            return .ended(.undeliverable(reason: "the simulated fleet has no node named \(node)"))
        }
        guard let source = sender.address(of: destination.family) else {
            return .ended(.undeliverable(reason: "node \(node) has no \(destination.family) address"))
        }
        guard let receiver = addressOwners[destination] else {
            return .ended(.undeliverable(reason: "no node has the address \(destination)"))
        }
        let header = PacketHeader(
            source: source, destination: destination, transport: transport,
            sourcePort: sourcePort, destinationPort: destinationPort
        )
        guard let transmission = nodes[node]?.transmit(header, now: currentTime) else {
            return .ended(.undeliverable(reason: "node \(node) vanished"))
        }
        if case .dropped(let statistic) = transmission { return .ended(.dropped(statistic)) }
        return .inFlight(
            PacketInFlight(receiver: receiver, sentAt: currentTime, header: header, transmission: transmission))
    }

    /// The second half of `send`: `packet` arrives now and goes through its receiver's input
    /// path as the receiver's kernel is now (an SA deleted since the packet left is missing).
    /// A receiver that no longer holds the destination address never sees it.
    public mutating func deliver(_ packet: PacketInFlight) -> PacketOutcome {
        guard addressOwners[packet.header.destination] == packet.receiver else {
            return .undeliverable(
                reason: "node \(packet.receiver) no longer has the address \(packet.header.destination)")
        }
        guard let outcome = nodes[packet.receiver]?.accept(packet.transmission, header: packet.header, now: currentTime)
        else {
            return .undeliverable(reason: "node \(packet.receiver) vanished")
        }
        return outcome
    }

    /// Sends one packet from `node` to the first address of `peer` in `family`.
    public mutating func send(
        from node: String, toNode peer: String, family: AddressFamily = .ipv4,
        transport: TransportProtocol = .udp, sourcePort: UInt16? = nil,
        destinationPort: UInt16? = nil
    ) -> PacketOutcome {
        guard let destination = nodes[peer]?.address(of: family) else {
            return .undeliverable(reason: "node \(peer) has no \(family) address")
        }
        return send(
            from: node, to: destination, transport: transport, sourcePort: sourcePort,
            destinationPort: destinationPort)
    }
}
