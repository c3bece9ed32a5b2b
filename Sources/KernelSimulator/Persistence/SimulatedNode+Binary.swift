import Kernel
import MeshwardCore

/// A node's body in the fleet file: everything the node holds, as `BinaryWriter` lays it out.
///
/// The body starts with `bodyVersion`; then the name, addresses, statistics (sorted by name),
/// reachability, pending faults and next insertion order; then every SA and every policy, each
/// list in insertion order, so that a node loads back with the same order of precedence.
/// Keys travel as their fingerprints only, as the node holds them.
extension SimulatedNode {
    /// The layout version of a node's body; a body of another version is refused.
    static let bodyVersion: UInt8 = 1

    /// The node as one body.
    func encodedBody() -> [UInt8] {
        var writer = BinaryWriter(
            capacity: 512 + 96 * securityAssociationDatabase.count + 64 * policyDatabase.count)
        writer.write(Self.bodyVersion)
        writer.write(name)
        writer.writeCount(addresses.count)
        for address in addresses { writer.write(address) }
        writer.writeCount(statistics.count)
        for (statistic, value) in statistics.sorted(by: { $0.key < $1.key }) {
            writer.write(statistic)
            writer.write(value)
        }
        writer.write(isReachable)
        faults.encode(into: &writer)
        writer.write(nextInsertionOrder)
        writer.writeCount(securityAssociationDatabase.count)
        for association in securityAssociationDatabase.values.sorted(by: { $0.insertionOrder < $1.insertionOrder }) {
            association.encode(into: &writer)
        }
        writer.writeCount(policyDatabase.count)
        for policy in policyDatabase.values.sorted(by: { $0.insertionOrder < $1.insertionOrder }) {
            policy.encode(into: &writer)
        }
        return writer.bytes
    }

    /// Reads a node from its body, refusing one that is truncated, has bytes left over, holds
    /// a value no writer produces, or lists two SAs (or policies) under one identifier.
    init(body: UnsafeRawBufferPointer) throws(BinaryDecodingError) {
        var reader = BinaryReader(body)
        let version = try reader.read(UInt8.self)
        guard version == Self.bodyVersion else {
            throw .invalid("body version \(version) (this Meshward reads version \(Self.bodyVersion))", offset: 0)
        }
        name = try reader.readString()
        let addressCount = try reader.readCount(minimumElementSize: 5)
        addresses = []
        addresses.reserveCapacity(addressCount)
        for _ in 0..<addressCount { addresses.append(try reader.readAddress()) }
        let statisticCount = try reader.readCount(minimumElementSize: 12)
        statistics = Dictionary(minimumCapacity: statisticCount)
        for _ in 0..<statisticCount {
            let statistic = try reader.readString()
            statistics[statistic] = try reader.read(UInt64.self)
        }
        isReachable = try reader.readBool()
        faults = try PendingFaults(reading: &reader)
        nextInsertionOrder = try reader.read(UInt64.self)

        securityAssociationDatabase = try Self.readDatabase(
            &reader, minimumElementSize: 64, SimulatedSecurityAssociation.init(reading:), key: \.identifier)
        policyDatabase = try Self.readDatabase(
            &reader, minimumElementSize: 32, SimulatedPolicy.init(reading:), key: \.identifier)
        try reader.requireEnd()
    }

    /// What the owner of `reqid` observes on the node a body holds, decoded straight from the
    /// body: the observation `SimulatedFleetState.observe` makes of the decoded node, without
    /// building the node's tables (the body lists each database in insertion order, which is
    /// the order an observation reports). Refuses what `init(body:)` refuses.
    static func observation(
        body: UnsafeRawBufferPointer, reqid: Reqid
    ) throws(BinaryDecodingError) -> (name: String, observation: Result<NodeObservation, KernelError>) {
        var reader = BinaryReader(body)
        let version = try reader.read(UInt8.self)
        guard version == Self.bodyVersion else {
            throw .invalid("body version \(version) (this Meshward reads version \(Self.bodyVersion))", offset: 0)
        }
        let name = try reader.readString()
        let addressCount = try reader.readCount(minimumElementSize: 5)
        for _ in 0..<addressCount { _ = try reader.readAddress() }
        let statisticCount = try reader.readCount(minimumElementSize: 12)
        var statistics = [String: UInt64](minimumCapacity: statisticCount)
        for _ in 0..<statisticCount {
            let statistic = try reader.readString()
            statistics[statistic] = try reader.read(UInt64.self)
        }
        let isReachable = try reader.readBool()
        _ = try PendingFaults(reading: &reader)
        _ = try reader.read(UInt64.self)

        var observation = NodeObservation(statistics: statistics)
        let associationCount = try reader.readCount(minimumElementSize: 64)
        var associationIdentifiers = Set<SAIdentifier>(minimumCapacity: associationCount)
        observation.securityAssociations.reserveCapacity(associationCount)
        for _ in 0..<associationCount {
            let start = reader.offset
            let association = try SimulatedSecurityAssociation(reading: &reader)
            guard associationIdentifiers.insert(association.identifier).inserted else {
                throw .invalid("a second object with identifier \(association.identifier)", offset: start)
            }
            if association.reqid == reqid {
                observation.securityAssociations.append(association.reported)
            } else {
                observation.foreignSPIs.insert(association.identifier)
            }
        }
        let policyCount = try reader.readCount(minimumElementSize: 32)
        var policyIdentifiers = Set<PolicyIdentifier>(minimumCapacity: policyCount)
        observation.policies.reserveCapacity(policyCount)
        for _ in 0..<policyCount {
            let start = reader.offset
            let policy = try SimulatedPolicy(reading: &reader)
            guard policyIdentifiers.insert(policy.identifier).inserted else {
                throw .invalid("a second object with identifier \(policy.identifier)", offset: start)
            }
            if policy.templateReqid == reqid { observation.policies.append(policy.reported) }
        }
        try reader.requireEnd()
        guard isReachable else {
            return (name, .failure(KernelError.unreachable(node: name, reason: "the simulated node is not answering")))
        }
        return (name, .success(observation))
    }

    /// Reads a count, then that many values into a dictionary by `key`, refusing two values
    /// with one key (the kernel holds one object per identifier).
    private static func readDatabase<Key: Hashable, Value>(
        _ reader: inout BinaryReader, minimumElementSize: Int,
        _ read: (inout BinaryReader) throws(BinaryDecodingError) -> Value, key: (Value) -> Key
    ) throws(BinaryDecodingError) -> [Key: Value] {
        let count = try reader.readCount(minimumElementSize: minimumElementSize)
        var database = [Key: Value](minimumCapacity: count)
        for _ in 0..<count {
            let start = reader.offset
            let value = try read(&reader)
            guard database.updateValue(value, forKey: key(value)) == nil else {
                throw .invalid("a second object with identifier \(key(value))", offset: start)
            }
        }
        return database
    }
}

extension PendingFaults {
    func encode(into writer: inout BinaryWriter) {
        writer.write(operationsReceived)
        writer.writeCount(failures.count)
        for failure in failures {
            writer.write(failure.operation)
            writer.write(failure.errno)
        }
        writer.write(answersLeft.map { Int64($0) })
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        self.init()
        operationsReceived = try reader.read(UInt64.self)
        let failureCount = try reader.readCount(minimumElementSize: 12)
        failures.reserveCapacity(failureCount)
        for _ in 0..<failureCount {
            failures.append(
                ScheduledFailure(operation: try reader.read(UInt64.self), errno: try reader.read(Int32.self)))
        }
        let start = reader.offset
        if let answers = try reader.readOptional(Int64.self) {
            guard let answers = Int(exactly: answers), answers >= 0 else {
                throw .invalid("\(answers) answers left", offset: start)
            }
            answersLeft = answers
        }
    }
}
