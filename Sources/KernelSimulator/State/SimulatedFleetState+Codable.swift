import Kernel
import MeshwardCore

extension SimulatedFleetState: Codable {
    private enum CodingKeys: String, CodingKey {
        case formatVersion, currentTime, nodes
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .formatVersion)
        guard version == Self.formatVersion else {
            throw DecodingError.dataCorruptedError(
                forKey: .formatVersion, in: container,
                debugDescription: "simulated fleet format \(version) is not supported (expected \(Self.formatVersion))"
            )
        }
        currentTime = try container.decode(UInt64.self, forKey: .currentTime)
        nodes = try container.decode([String: SimulatedNode].self, forKey: .nodes)
        addressOwners = [:]
        rebuildAddressIndex()
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.formatVersion, forKey: .formatVersion)
        try container.encode(currentTime, forKey: .currentTime)
        try container.encode(nodes, forKey: .nodes)
    }
}
