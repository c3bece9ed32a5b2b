/// The fleets the planning and the controller suites start from.
extension FleetSpec {
    /// Three tiers: n1 (web) to n2 (app) on tcp/8080, n2 to n3 (db, IPv4 only) on every port.
    static let threeTier = FleetSpec(
        nodes: [
            FleetSpec.node(1, tier: "web"), FleetSpec.node(2, tier: "app"), FleetSpec.node(3, tier: "db", ipv6: false),
        ],
        flows: [
            .init(name: "web-app", from: "n1", to: "n2", ports: ["tcp/8080"], cipher: nil),
            .init(name: "app-db", from: "n2", to: "n3", ports: [], cipher: nil),
        ])

    /// Two nodes and one flow between them (two channels, one per direction), IPv4 only.
    static func pair(n2: String = "198.18.0.12", drain: String = "5s", flows: Bool = true) -> FleetSpec {
        FleetSpec(
            nodes: [
                .init(name: "n1", ipv4: "198.18.0.11", ipv6: nil, tier: "web"),
                .init(name: "n2", ipv4: n2, ipv6: nil, tier: "app"),
            ],
            flows: flows ? [.init(name: "n1-n2", from: "n1", to: "n2", ports: [], cipher: nil)] : [], drain: drain)
    }
}
