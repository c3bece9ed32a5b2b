import MeshwardCore

/// The addresses and the forward channel of `FleetSpec.pair()`, for the planner scenarios on it.
enum PairFleet {
    /// n2's address.
    static let n2 = IPAddress("198.18.0.12")!
    /// The address n2 moves to in the re-addressing scenarios (`FleetSpec.pair(n2: "198.18.0.52")`).
    static let n2Moved = IPAddress("198.18.0.52")!
    /// The channel from n1 to n2.
    static let forward = ChannelID(from: "n1", to: "n2", family: .ipv4)
}
