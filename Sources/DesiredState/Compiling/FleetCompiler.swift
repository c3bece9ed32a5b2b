import MeshwardCore

/// Compiles a merged spec into channels: resolves selectors, expands flows into node pairs and
/// families, unions the traffic of every flow that lands on one channel, and checks ciphers.
///
/// Channels are built one sending node at a time in a dense row indexed by receiving node and
/// family, so they come out already sorted and no hash table or sort over all channels is needed:
/// the work is proportional to the (flow, node pair) combinations the selectors produce.
struct FleetCompiler {
    /// The traffic one flow puts on each direction, per family (index 0 IPv4, 1 IPv6).
    fileprivate struct FlowTraffic {
        /// nil: all traffic. An empty list for a family: the flow puts nothing on that family.
        var forward: [[TrafficMatch]]?
        var reverse: [[TrafficMatch]]?
    }

    /// What the flows have put on one channel so far.
    fileprivate struct Accumulator {
        var any = false
        var traffic: [TrafficMatch] = []
        /// The first flow to produce the channel; its cipher is the channel's.
        var cipherFlow: Int32
        /// Flows after the first, kept apart so the common single-flow channel allocates nothing.
        var laterFlows: [Int32] = []
    }

    /// Compiles `spec`; nil when the spec (or anything logged before) has errors.
    static func compile(_ spec: MergedSpec, log: inout DiagnosticLog) -> FleetIntent? {
        let nodes = spec.nodes.sorted { $0.name.value < $1.name.value }
        let flows = spec.flows.sorted { $0.name.value < $1.name.value }
        let nodeIntents = nodes.map { node in
            NodeIntent(
                name: node.name.value, addresses: node.addresses.map(\.value), labels: node.labels,
                endpoint: node.endpoint ?? spec.endpoint)
        }
        let nodeCount = nodeIntents.count
        let families: [AddressFamily] = [.ipv4, .ipv6]
        let addresses: [[IPAddress?]] = families.map { family in nodeIntents.map { $0.address(for: family) } }
        let ciphers = flows.map { $0.cipher?.value ?? spec.cipher }

        // Resolve every flow's selectors once.
        var sources: [[Int]] = []
        var destinations: [[Int]] = []
        var isSource: [[Bool]] = []
        var isDestination: [[Bool]] = []
        var traffic: [FlowTraffic] = []
        var active: [Int] = []
        for (flowIndex, flow) in flows.enumerated() {
            let from = select(flow.from, in: nodeIntents, flow: flow.name.value, side: "from", log: &log)
            let to = select(flow.to, in: nodeIntents, flow: flow.name.value, side: "to", log: &log)
            sources.append(from)
            destinations.append(to)
            isSource.append(membership(from, count: nodeCount))
            isDestination.append(membership(to, count: nodeCount))
            traffic.append(FlowTraffic(ports: flow.ports))
            if from.count == 1, to == from {
                log.error(
                    "flow '\(flow.name.value)' selects only node '\(nodeIntents[from[0]].name)' on both "
                        + "sides; a node needs no channel to itself", at: flow.name.location)
                continue
            }
            active.append(flowIndex)
            warnAboutDisjointPairs(flow: flow, from: from, to: to, addresses: addresses, nodes: nodeIntents, log: &log)
        }

        let anyTraffic = [TrafficMatch.any]
        let singleFlowNames = flows.map { [$0.name.value] }
        var channels: [ChannelIntent] = []
        channels.reserveCapacity(
            capacityEstimate(
                active: active, sources: sources, destinations: destinations,
                addresses: addresses))
        var conflicts: [Pair: (from: Int, to: Int)] = [:]
        var slotOf = [Int32](repeating: -1, count: 2 * nodeCount)
        var row: [Accumulator] = []
        var touched: [Int] = []

        for source in 0..<nodeCount {
            func contribute(to destination: Int, flow: Int, forward: Bool) {
                for family in 0..<2 where addresses[family][source] != nil && addresses[family][destination] != nil {
                    let matches = forward ? traffic[flow].forward?[family] : traffic[flow].reverse?[family]
                    if let matches, matches.isEmpty { continue }
                    let slot = destination * 2 + family
                    var index = Int(slotOf[slot])
                    if index < 0 {
                        index = row.count
                        slotOf[slot] = Int32(index)
                        row.append(Accumulator(cipherFlow: Int32(flow)))
                        touched.append(slot)
                    }
                    row[index].add(flow: Int32(flow), matches: matches)
                    let firstFlow = Int(row[index].cipherFlow)
                    if ciphers[firstFlow] != ciphers[flow] {
                        let pair = Pair(firstFlow, flow)
                        if conflicts[pair] == nil { conflicts[pair] = (source, destination) }
                    }
                }
            }
            for flow in active {
                if isSource[flow][source] {
                    for destination in destinations[flow] where destination != source {
                        contribute(to: destination, flow: flow, forward: true)
                    }
                }
                if isDestination[flow][source] {
                    for destination in sources[flow] where destination != source {
                        contribute(to: destination, flow: flow, forward: false)
                    }
                }
            }
            guard !touched.isEmpty else { continue }
            if touched.count * 8 >= slotOf.count {
                touched = slotOf.indices.filter { slotOf[$0] >= 0 }
            } else {
                touched.sort()
            }
            for slot in touched {
                let accumulator = row[Int(slotOf[slot])]
                slotOf[slot] = -1
                let destination = slot / 2
                let family = slot % 2
                guard let from = addresses[family][source], let to = addresses[family][destination] else { continue }
                let flowNames =
                    accumulator.laterFlows.isEmpty
                    ? singleFlowNames[Int(accumulator.cipherFlow)]
                    : ([accumulator.cipherFlow] + accumulator.laterFlows).sorted().map { flows[Int($0)].name.value }
                channels.append(
                    ChannelIntent(
                        id: ChannelID(
                            from: nodeIntents[source].name, to: nodeIntents[destination].name,
                            family: families[family]),
                        source: from, destination: to,
                        traffic: accumulator.any ? anyTraffic : TrafficSet.normalize(accumulator.traffic),
                        cipher: ciphers[Int(accumulator.cipherFlow)], rekey: spec.rekey, drain: spec.drain,
                        enforcement: spec.enforcement, flows: flowNames))
            }
            row.removeAll(keepingCapacity: true)
            touched.removeAll(keepingCapacity: true)
        }

        for (pair, nodesOfPair) in conflicts {
            let first = flows[pair.low]
            let second = flows[pair.high]
            let ordered = first.name.location < second.name.location ? (first, second) : (second, first)
            let cipherOf = { (flow: SpecFile.Flow) in (flow.cipher?.value ?? spec.cipher).rawValue }
            log.error(
                "flows '\(ordered.0.name.value)' (\(ordered.0.name.location)) and '\(ordered.1.name.value)' "
                    + "(\(ordered.1.name.location)) put different ciphers on nodes '\(nodeIntents[nodesOfPair.from].name)' "
                    + "and '\(nodeIntents[nodesOfPair.to].name)': \(cipherOf(ordered.0)) and \(cipherOf(ordered.1)); "
                    + "give both flows the same cipher", at: ordered.1.cipher?.location ?? ordered.1.name.location)
        }

        guard !log.hasErrors, let cluster = spec.cluster else { return nil }
        return FleetIntent(
            cluster: cluster, reqid: spec.reqid, sortedNodes: nodeIntents, sortedChannels: channels,
            flowCount: flows.count, certificateLifetime: spec.certificateLifetime)
    }

    /// An upper bound of the channel count that is exact for a full mesh: the flows' ordered pairs
    /// in both directions, at most every ordered pair of nodes, times the families in use.
    private static func capacityEstimate(
        active: [Int], sources: [[Int]], destinations: [[Int]],
        addresses: [[IPAddress?]]
    ) -> Int {
        let nodeCount = addresses[0].count
        let familiesInUse = addresses.filter { $0.contains { $0 != nil } }.count
        let pairs = active.reduce(0) { $0 + 2 * sources[$1].count * destinations[$1].count }
        return min(pairs, nodeCount * max(0, nodeCount - 1)) * familiesInUse
    }

    private static func membership(_ indexes: [Int], count: Int) -> [Bool] {
        var members = [Bool](repeating: false, count: count)
        for index in indexes { members[index] = true }
        return members
    }

    /// Warns once per flow when some of the node pairs it selects share no address family.
    private static func warnAboutDisjointPairs(
        flow: SpecFile.Flow, from: [Int], to: [Int], addresses: [[IPAddress?]],
        nodes: [NodeIntent], log: inout DiagnosticLog
    ) {
        var count = 0
        var example: (Int, Int)?
        for source in from {
            let v4 = addresses[0][source] != nil
            let v6 = addresses[1][source] != nil
            for destination in to where destination != source {
                if (v4 && addresses[0][destination] != nil) || (v6 && addresses[1][destination] != nil) { continue }
                count += 1
                if example == nil { example = (source, destination) }
            }
        }
        guard let (source, destination) = example else { return }
        let more = count > 1 ? " (and \(count - 1) more node pairs)" : ""
        log.warning(
            "flow '\(flow.name.value)': nodes '\(nodes[source].name)' and '\(nodes[destination].name)' "
                + "share no address family\(more), so no channel joins them", at: flow.name.location)
    }

    /// The indexes of the nodes `selector` picks; warns when it picks none.
    private static func select(
        _ selector: Located<LabelSelector>, in nodes: [NodeIntent], flow: String, side: String,
        log: inout DiagnosticLog
    ) -> [Int] {
        let picked = nodes.indices.filter { selector.value.matches(name: nodes[$0].name, labels: nodes[$0].labels) }
        if picked.isEmpty {
            log.warning(
                "'\(side)' of flow '\(flow)' matches no node: \(selector.value.description)",
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
        if flow != cipherFlow, laterFlows.last != flow, !laterFlows.contains(flow) { laterFlows.append(flow) }
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
        let byFamily = [AddressFamily.ipv4, .ipv6].map { family in
            ports.filter { match in
                switch match.transport {
                case .icmp: family == .ipv4
                case .icmpv6: family == .ipv6
                default: true
                }
            }
        }
        forward = byFamily
        reverse = byFamily.map { $0.map(\.reversed) }
    }
}
