import ArgumentParser

@main
struct MeshwardBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "meshward-bench",
        abstract: "Meshward's benchmarks; each prints its figures as a table and as JSON.",
        subcommands: [
            CompileBenchmark.self, PlanScaleBenchmark.self, ObserveBenchmark.self, ApplySimBenchmark.self,
            SimulatorBenchmark.self, NetlinkBenchmark.self, StoreBenchmark.self, HostileSpecBenchmark.self,
            AgentsBenchmark.self, FleetFileBenchmark.self,
        ]
    )
}
