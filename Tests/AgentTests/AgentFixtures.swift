import Agent
import AgentTestSupport
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import Synchronization
import Testing

/// Values and helpers the agent tests share (addresses in 198.18.0.0/15).
enum AgentFixtures {
    static let alpha = address("198.18.0.1")
    static let bravo = address("198.18.0.2")

    static func address(_ text: String) -> IPAddress {
        guard let address = IPAddress(text) else { fatalError("bad test address \(text)") }
        return address
    }

    /// A simulated fleet with nodes a (198.18.0.1) and b (198.18.0.2).
    static func fleet() -> SimulatedFleet {
        let fleet = SimulatedFleet()
        fleet.withState { state in
            state.addNode("a", addresses: [alpha])
            state.addNode("b", addresses: [bravo])
        }
        return fleet
    }

    static func association(spi: UInt32, key: KeyMaterial) -> SecurityAssociation {
        SecurityAssociation(
            source: alpha, destination: bravo, spi: SPI(spi), reqid: .meshwardDefault, cipher: .aesGCM256,
            key: .material(key))
    }

    static func key() throws -> KeyMaterial { try KeyMaterial.random(count: Cipher.aesGCM256.keyLength) }

    /// A fresh 0700 directory under the temporary directory.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "meshward-agent-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        return path
    }

    /// The error `body` throws, as text; fails the test when it throws nothing.
    static func errorText(_ body: () async throws -> Void) async -> String {
        do {
            try await body()
        } catch {
            return "\(error)"
        }
        Issue.record("expected an error")
        return ""
    }
}

/// A kernel that never answers: what a hung host looks like from the agent.
struct HungConnector: KernelConnector {
    var schemes: Set<NodeEndpoint.Scheme> { [.sim] }

    func connect(node: String, endpoint: NodeEndpoint, reqid: Reqid) async throws -> any NodeKernel {
        HungKernel(node: node, reqid: reqid)
    }
}

struct HungKernel: NodeKernel {
    let node: String
    let reqid: Reqid

    func observe(deadline: ContinuousClock.Instant) async throws -> NodeObservation {
        try await Task.sleep(for: .seconds(3600))
        return NodeObservation()
    }

    func apply(_ operations: [KernelOperation], deadline: ContinuousClock.Instant) async throws -> [OperationResult] {
        try await Task.sleep(for: .seconds(3600))
        return []
    }
}
