import Agent
import AgentTestSupport
import Foundation
import Kernel
import KernelSimulator
import MeshwardCore
import Synchronization
import Testing

@Suite("the agent fences writes by the controller's lease epoch")
struct AgentEpochTests {
    @Test("an apply with a lower epoch than one accepted is refused, naming both epochs, and changes nothing")
    func lowerEpochRefused() async throws {
        let fleet = AgentFixtures.fleet()
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), directories: ["a": directory])
        defer { Task { await agents.stop() } }
        let current = try await agents.kernel("a", epoch: { 5 })
        let first = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        #expect(try await current.apply([.addSA(first)]).map(\.outcome) == [.applied])
        let deposed = try await agents.kernel("a", epoch: { 3 })
        let second = AgentFixtures.association(spi: 0x2000, key: try AgentFixtures.key())
        let message = await AgentFixtures.errorText { _ = try await deposed.apply([.addSA(second)]) }
        #expect(message.contains("lease epoch 3") && message.contains("already accepted epoch 5"), "\(message)")
        #expect(fleet.state.nodes["a"]?.securityAssociations.map(\.spi) == [SPI(0x1000)])
        #expect(try directory.readHighestEpoch() == 5)
    }

    @Test("the highest epoch survives an agent restart: the restarted agent still refuses the lower one")
    func epochPersists() async throws {
        let fleet = AgentFixtures.fleet()
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        let first = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), directories: ["a": directory])
        let sa = AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key())
        _ = try await first.kernel("a", epoch: { 7 }).apply([.addSA(sa)])
        await first.stop()
        let restarted = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), ca: first.ca, directories: ["a": directory])
        defer { Task { await restarted.stop() } }
        let deposed = try await restarted.kernel("a", epoch: { 6 })
        let message = await AgentFixtures.errorText {
            _ = try await deposed.apply([.deleteSA(sa.identifier)])
        }
        #expect(message.contains("lease epoch 6") && message.contains("epoch 7"), "\(message)")
        #expect(fleet.state.nodes["a"]?.securityAssociations.count == 1)
    }
}

@Suite("the agent directory")
struct AgentDirectoryTests {
    @Test("a directory other users can read is refused with the chmod that fixes it")
    func looseDirectory() throws {
        let path = try AgentFixtures.temporaryDirectory()
        chmod(path, 0o755)
        #expect(throws: AgentError.insecurePermissions(path: path, mode: 0o755, fix: "chmod 700 \(path)")) {
            try AgentDirectory(path: path).prepare()
        }
    }

    @Test("a key file other users can read is refused")
    func looseKeyFile() throws {
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        try directory.writeCredentials(
            AgentCredentials(caCertificatePEM: "ca", certificatePEM: "cert", privateKeyPEM: "key"))
        chmod(directory.privateKeyPath, 0o644)
        #expect(
            throws: AgentError.insecurePermissions(
                path: directory.privateKeyPath, mode: 0o644, fix: "chmod 600 \(directory.privateKeyPath)")
        ) { try directory.readCredentials() }
    }

    @Test("a missing directory is created 0700 and every file written 0600")
    func createdPrivate() throws {
        let path = try AgentFixtures.temporaryDirectory() + "/agent"
        let directory = AgentDirectory(path: path)
        try directory.prepare()
        try directory.writeCredentials(
            AgentCredentials(caCertificatePEM: "ca", certificatePEM: "cert", privateKeyPEM: "key"))
        try directory.writeHighestEpoch(3)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o700)
        for file in try FileManager.default.contentsOfDirectory(atPath: path) {
            let mode = try FileManager.default.attributesOfItem(atPath: path + "/" + file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
    }

    @Test("keys applied through the agent appear in no file of its directory")
    func noKeysOnDisk() async throws {
        let fleet = AgentFixtures.fleet()
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        let agents = try await InProcessAgents.start(
            nodes: ["a"], connector: SimulatedConnector(fleet: fleet), directories: ["a": directory])
        defer { Task { await agents.stop() } }
        let key = try AgentFixtures.key()
        let kernel = try await agents.kernel("a", epoch: { 2 })
        _ = try await kernel.apply([.addSA(AgentFixtures.association(spi: 0x1000, key: key))])
        let hex = key.bytes.map { String(format: "%02x", $0) }.joined()
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(files.contains("epoch"))
        for file in files {
            let data = try #require(FileManager.default.contents(atPath: directory.path + "/" + file))
            #expect(data.range(of: Data(key.bytes)) == nil, "\(file) holds the key bytes")
            #expect(!String(decoding: data, as: UTF8.self).lowercased().contains(hex), "\(file) holds the key in hex")
        }
    }
}
