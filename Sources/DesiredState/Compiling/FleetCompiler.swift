import MeshwardCore

/// Compiles a merged spec into channels: resolves selectors, expands flows into node pairs and
/// families, unions the traffic of every flow that lands on one channel, and checks ciphers.
///
/// The work is proportional to the node pairs the flows select (the channels themselves) plus a
/// sort of the channel keys; nothing is quadratic in the number of channels.
struct FleetCompiler {
    /// The traffic one flow puts on each direction of each family.
    fileprivate struct FlowTraffic {
        /// nil: all traffic.
        var forward: [AddressFamily: [TrafficMatch]]?
        var reverse: [AddressFamily: [TrafficMatch]]?
    }

    /// What the flows have put on one channel so far.
    fileprivate struct Accumulator {
        var any = false
        var traffic: [TrafficMatch] = []
        var flows: [Int32] = []
        var cipherFlow: Int32
    }

    /// Compiles `spec`; nil when the spec (or anything logged before) has errors.
    static func compile(_ spec: MergedSpec, log: inout DiagnosticLog) -> FleetIntent? {
        let nodes = spec.nodes.sorted { $0.name.value < $1.name.value }
        let flows = spec.flows.sorted { $0.name.value < $1.name.value }
        let nodeIntents = nodes.map { node in
            NodeIntent(name: node.name.value, addresses: node.addresses.map(\.value), labels: node.labels,
                       endpoint: node.endpoint ?? spec.endpoint)
        }
        let ciphers = flows.map { $0.cipher?.value ?? spec.cipher }

        var index: [UInt64: Int32] = [:]
        var accumulators: [Accumulator] = []
        var conflicts: [Pair: (from: Int, to: Int)] = [:]

        for (flowIndex, flow) in flows.enumerated() {
            let sources = select(flow.from, in: nodeIntents, flow: flow.name.value, side: "from", log: &log)
            let destinations = select(flow.to, in: nodeIntents, flow: flow.name.value, side: "to", log: &log)
            if sources.count == 1, destinations == sources {
                log.error("flow '\(flow.name.value)' selects only node '\(nodeIntents[sources[0]].name)' on both "
                    + "sides; a node needs no channel to itself", at: flow.name.location)
                continue
            }
            let traffic = FlowTraffic(ports: flow.ports)
            let cipher = ciphers[flowIndex]
            var disjointPairs = 0
            var disjointExample: (Int, Int)?
            for source in sources {
                let sourceFamilies = nodeIntents[source].addresses
                for destination in destinations where destination != source {
                    var shared = false
                    for address in sourceFamilies {
                        let family = address.family
                        guard nodeIntents[destination].address(for: family) != nil else { continue }
                        shared = true
                        let forward = traffic.forward.map { $0[family] ?? [] }
                        let reverse = traffic.reverse.map { $0[family] ?? [] }
                        if let forward, forward.isEmpty { continue }
                        func record(from: Int, to: Int, matches: [TrafficMatch]?) {
                            let key = UInt64(from) << 32 | UInt64(to) << 1 | (family == .ipv6 ? 1 : 0)
                            let slot: Int
                            if let existing = index[key] {
                                slot = Int(existing)
                            } else {
                                slot = accumulators.count
                                index[key] = Int32(slot)
                                accumulators.append(Accumulator(cipherFlow: Int32(flowIndex)))
                            }
                            accumulators[slot].add(flow: Int32(flowIndex), matches: matches)
                            let firstFlow = Int(accumulators[slot].cipherFlow)
                            if ciphers[firstFlow] != cipher {
                                let pair = Pair(firstFlow, flowIndex)
                                if conflicts[pair] == nil { conflicts[pair] = (from, to) }
                            }
                        }
                        record(from: source, to: destination, matches: forward)
                        record(from: destination, to: source, matches: reverse)
                    }
                    if !shared {
                        disjointPairs += 1
                        if disjointExample == nil { disjointExample = (source, destination) }
                    }
                }
            }
            if let (source, destination) = disjointExample {
                let more = disjointPairs > 1 ? " (and \(disjointPairs - 1) more node pairs)" : ""
                log.warning("flow '\(flow.name.value)': nodes '\(nodeIntents[source].name)' and "
                    + "'\(nodeIntents[destination].name)' share no address family\(more), so no channel joins them",
                            at: flow.name.location)
            }
        }

        for (pair, nodesOfPair) in conflicts {
            let first = flows[pair.low]
            let second = flows[pair.high]
            let ordered = first.name.location < second.name.location ? (first, second) : (second, first)
            let cipherOf = { (flow: SpecFile.Flow) in (flow.cipher?.value ?? spec.cipher).rawValue }
            log.error("flows '\(ordered.0.name.value)' (\(ordered.0.name.location)) and '\(ordered.1.name.value)' "
                + "(\(ordered.1.name.location)) put different ciphers on nodes '\(nodeIntents[nodesOfPair.from].name)' "
                + "and '\(nodeIntents[nodesOfPair.to].name)': \(cipherOf(ordered.0)) and \(cipherOf(ordered.1)); "
                + "give both flows the same cipher", at: ordered.1.cipher?.location ?? ordered.1.name.location)
        }

        guard !log.hasErrors, let cluster = spec.cluster else { return nil }

        let keys = index.keys.sorted()
        let anyTraffic = [TrafficMatch.any]
        let singleFlowNames = flows.map { [$0.name.value] }
        var channels: [ChannelIntent] = []
        channels.reserveCapacity(keys.count)
        for key in keys {
            let accumulator = accumulators[Int(index[key] ?? 0)]
            let from = Int(key >> 32)
            let to = Int((key >> 1) & 0x7FFF_FFFF)
            let family: AddressFamily = key & 1 == 1 ? .ipv6 : .ipv4
            guard let source = nodeIntents[from].address(for: family),
                  let destination = nodeIntents[to].address(for: family) else { continue }
            let flowNames = accumulator.flows.count == 1
                ? singleFlowNames[Int(accumulator.flows[0])]
                : accumulator.flows.sorted().map { flows[Int($0)].name.value }
            channels.append(ChannelIntent(
                id: ChannelID(from: nodeIntents[from].name, to: nodeIntents[to].name, family: family),
                source: source, destination: destination,
                traffic: accumulator.any ? anyTraffic : TrafficSet.normalize(accumulator.traffic),
                cipher: ciphers[Int(accumulator.cipherFlow)], rekey: spec.rekey, drain: spec.drain,
                enforcement: spec.enforcement, flows: flowNames))
        }
        return FleetIntent(cluster: cluster, reqid: spec.reqid, sortedNodes: nodeIntents, sortedChannels: channels,
                           flowCount: flows.count)
    }

    /// The indexes of the nodes `selector` picks; warns when it picks none.
    private static func select(_ selector: Located<LabelSelector>, in nodes: [NodeIntent], flow: String, side: String,
                               log: inout DiagnosticLog) -> [Int] {
        let picked = nodes.indices.filter { selector.value.matches(name: nodes[$0].name, labels: nodes[$0].labels) }
        if picked.isEmpty {
            log.warning("'\(side)' of flow '\(flow)' matches no node: \(selector.value.description)",
                        at: selector.location)
        }
        return picked
    }

    /// An unordered pair of flow indexes.
    private struct Pair: Hashable {
        let low: Int
        let high: Int
        init(_ a: Int, _ b: Int) {
            low = min(a, b)
            high = max(a, b)
        }
    }
}

extension FleetCompiler.Accumulator {
    fileprivate mutating func add(flow: Int32, matches: [TrafficMatch]?) {
        if flows.last != flow, !flows.contains(flow) { flows.append(flow) }
        guard !any else { return }
        guard let matches else {
            any = true
            traffic = []
            return
        }
        traffic.append(contentsOf: matches)
    }
}

extension FleetCompiler.FlowTraffic {
    /// Splits a flow's port list by family: icmp travels only over IPv4, icmpv6 only over IPv6.
    fileprivate init(ports: [TrafficMatch]?) {
        guard let ports else {
            forward = nil
            reverse = nil
            return
        }
        var forward: [AddressFamily: [TrafficMatch]] = [:]
        var reverse: [AddressFamily: [TrafficMatch]] = [:]
        for family in AddressFamily.allCases {
            let fitting = ports.filter { match in
                switch match.transport {
                case .icmp: family == .ipv4
                case .icmpv6: family == .ipv6
                default: true
                }
            }
            forward[family] = fitting
            reverse[family] = fitting.map(\.reversed)
        }
        self.forward = forward
        self.reverse = reverse
    }
}
