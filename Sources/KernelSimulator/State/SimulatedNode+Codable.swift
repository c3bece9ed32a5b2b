import Kernel
import MeshwardCore

/// The node travels as plain arrays of records; the indexes are rebuilt when decoding.
extension SimulatedNode: Codable {
    private enum CodingKeys: String, CodingKey {
        case name, addresses, statistics, isReachable, securityAssociations, policies, faults, nextInsertionOrder
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        addresses = try container.decode([IPAddress].self, forKey: .addresses)
        statistics = try container.decode([String: UInt64].self, forKey: .statistics)
        isReachable = try container.decode(Bool.self, forKey: .isReachable)
        faults = try container.decode(PendingFaults.self, forKey: .faults)
        nextInsertionOrder = try container.decode(UInt64.self, forKey: .nextInsertionOrder)
        let associations = try container.decode([SimulatedSecurityAssociation].self, forKey: .securityAssociations)
        securityAssociationDatabase = Dictionary(associations.map { ($0.identifier, $0) }) { first, _ in first }
        let policies = try container.decode([SimulatedPolicy].self, forKey: .policies)
        policyDatabase = Dictionary(policies.map { ($0.identifier, $0) }) { first, _ in first }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(addresses, forKey: .addresses)
        try container.encode(statistics, forKey: .statistics)
        try container.encode(isReachable, forKey: .isReachable)
        try container.encode(faults, forKey: .faults)
        try container.encode(nextInsertionOrder, forKey: .nextInsertionOrder)
        try container.encode(
            securityAssociationDatabase.values.sorted { $0.insertionOrder < $1.insertionOrder },
            forKey: .securityAssociations
        )
        try container.encode(
            policyDatabase.values.sorted { $0.insertionOrder < $1.insertionOrder }, forKey: .policies
        )
    }
}
