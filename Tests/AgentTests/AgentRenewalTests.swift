import Agent
import AgentTestSupport
import Foundation
import Identity
import Kernel
import KernelSimulator
import MeshwardCore
import Synchronization
import Testing
import X509

/// Certificate renewal over the agent connection, in-process over real gRPC and mutual TLS: the
/// agent makes the new key, the controller's CA issues for its CSR, the agent checks, writes and
/// listens again with it.
@Suite("agent certificate renewal over the connection")
struct AgentRenewalTests {
    /// One agent for node a with a directory of its own, and the controller's kernel for it.
    final class Fixture: Sendable {
        let agents: InProcessAgents
        let directory: AgentDirectory
        let issued = Mutex(0)

        init() async throws {
            directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
            agents = try await InProcessAgents.start(
                nodes: ["a"], connector: SimulatedConnector(fleet: AgentFixtures.fleet()),
                directories: ["a": directory])
        }

        func kernel(epoch: UInt64 = 1) async throws -> AgentKernel {
            try #require(try await agents.kernel("a", epoch: { epoch }) as? AgentKernel)
        }

        /// The cluster CA's certificate for `csr`, as the controller issues it, counted.
        func issue(_ csr: [UInt8]) throws -> [UInt8] {
            issued.withLock { $0 += 1 }
            let certificate = try agents.ca.issue(
                node: "a", csrDER: csr, addresses: [], now: Date(), validity: .seconds(7 * 86_400))
            return try certificate.serializeAsPEM().derBytes
        }

        /// When the certificate that a new connection to the agent sees expires.
        func servedExpiry() async throws -> Date {
            let kernel = try await kernel()
            defer { Task { await kernel.close() } }
            return try #require(try await kernel.observe().agentCertificateExpiry)
        }

        func stop() async {
            await agents.stop()
            try? FileManager.default.removeItem(atPath: directory.path)
        }
    }

    static func mode(_ path: String) throws -> Int {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test(
        "a renewal gives the agent a new key and certificate over its connection: written 0600 and matching, and a new connection to the same port sees the new certificate"
    )
    func renews() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.servedExpiry()
        let kernel = try await fixture.kernel()
        let expires = try await kernel.renewCertificate(deadline: .now + .seconds(30)) { try fixture.issue($0) }
        await kernel.close()
        #expect(abs(expires.timeIntervalSinceNow - 7 * 86_400) < 120)
        #expect(expires > before)
        // The in-process agent's directory holds no CA certificate: the two files are read alone.
        let credential = try IssuedCredential(
            certificatePEM: try String(contentsOfFile: fixture.directory.certificatePath, encoding: .utf8),
            privateKeyPEM: try String(contentsOfFile: fixture.directory.privateKeyPath, encoding: .utf8))
        #expect(credential.keyMatches)
        #expect(abs(credential.notValidAfter.timeIntervalSince(expires)) < 1)
        for file in [fixture.directory.certificatePath, fixture.directory.privateKeyPath] {
            #expect(try Self.mode(file) == 0o600, "\(file)")
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.privateKeyPath + ".new"))
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.certificatePath + ".new"))
        let served = try await fixture.servedExpiry()
        #expect(abs(served.timeIntervalSince(expires)) < 1, "served \(served), renewed \(expires)")
        #expect(fixture.agents.servers["a"]?.certificateValidity.upperBound == credential.notValidAfter)
        await fixture.stop()
    }

    @Test(
        "a renewed certificate for another key, for another node or from another CA is refused naming why; the agent writes nothing and keeps serving its old certificate"
    )
    func refusedCertificates() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.servedExpiry()
        let ca = fixture.agents.ca
        let stranger = try ClusterCA.create(cluster: "test", now: Date())
        let cases: [(String, @Sendable ([UInt8]) throws -> [UInt8])] = [
            (
                "it is not for the key this renewal made",
                { _ in
                    try ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(86_400))
                        .certificate.serializeAsPEM().derBytes
                }
            ),
            (
                "expected spiffe://test/node/a",
                { csr in
                    try ca.issue(node: "b", csrDER: csr, addresses: [], now: Date(), validity: .seconds(86_400))
                        .serializeAsPEM().derBytes
                }
            ),
            (
                "is not issued by this cluster's CA",
                { csr in
                    try stranger.issue(node: "a", csrDER: csr, addresses: [], now: Date(), validity: .seconds(86_400))
                        .serializeAsPEM().derBytes
                }
            ),
        ]
        for (expected, issue) in cases {
            let kernel = try await fixture.kernel()
            let message = await AgentFixtures.errorText {
                _ = try await kernel.renewCertificate(deadline: .now + .seconds(30), issue: issue)
            }
            await kernel.close()
            #expect(message.contains("refused the renewed certificate and keeps the old one"), "\(message)")
            #expect(message.contains(expected), "\(message)")
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.certificatePath), "\(expected)")
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.privateKeyPath + ".new"))
            #expect(try await fixture.servedExpiry() == before, "\(expected)")
        }
        await fixture.stop()
    }

    @Test(
        "a renewal whose files cannot be written fails naming the file, leaves the old pair served and no half-written file, and the next renewal succeeds"
    )
    func writeFailure() async throws {
        let fixture = try await Fixture()
        let before = try await fixture.servedExpiry()
        // A directory where the new certificate's file goes: creating it fails.
        let blocker = fixture.directory.certificatePath + ".new"
        try FileManager.default.createDirectory(atPath: blocker, withIntermediateDirectories: false)
        let kernel = try await fixture.kernel()
        let message = await AgentFixtures.errorText {
            _ = try await kernel.renewCertificate(deadline: .now + .seconds(30)) { try fixture.issue($0) }
        }
        #expect(message.contains("could not write its renewed certificate and keeps the old one"), "\(message)")
        #expect(message.contains("\(blocker): create failed"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.privateKeyPath + ".new"))
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.privateKeyPath))
        #expect(try await fixture.servedExpiry() == before)

        try FileManager.default.removeItem(atPath: blocker)
        let expires = try await kernel.renewCertificate(deadline: .now + .seconds(30)) { try fixture.issue($0) }
        await kernel.close()
        #expect(abs(try await fixture.servedExpiry().timeIntervalSince(expires)) < 1)
        #expect(fixture.issued.withLock { $0 } == 2)
        await fixture.stop()
    }

    @Test(
        "a renewal from a controller with a lower lease epoch than the agent has seen is refused before any key or CSR")
    func staleEpoch() async throws {
        let fixture = try await Fixture()
        let current = try await fixture.kernel(epoch: 5)
        _ = try await current.apply([.addSA(AgentFixtures.association(spi: 0x1000, key: try AgentFixtures.key()))])
        await current.close()
        let deposed = try await fixture.kernel(epoch: 4)
        let message = await AgentFixtures.errorText {
            _ = try await deposed.renewCertificate(deadline: .now + .seconds(30)) { try fixture.issue($0) }
        }
        await deposed.close()
        #expect(message.contains("lease epoch 4"), "\(message)")
        #expect(message.contains("epoch 5"), "\(message)")
        #expect(fixture.issued.withLock { $0 } == 0)
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.certificatePath))
        await fixture.stop()
    }
}

/// The agent directory's two-file replacement of key and certificate, stopped at each point.
@Suite("agent directory key and certificate replacement")
struct AgentDirectoryReplacementTests {
    static func pair(_ ca: ClusterCA) throws -> (certificate: String, key: String) {
        let issued = try ca.issue(for: .node(cluster: "test", name: "a"), now: Date(), validity: .seconds(86_400))
        return (try issued.certificatePEM, issued.privateKeyPEM)
    }

    static func directory(holding old: (certificate: String, key: String), ca: ClusterCA) throws -> AgentDirectory {
        let directory = AgentDirectory(path: try AgentFixtures.temporaryDirectory())
        try directory.writeCredentials(
            AgentCredentials(
                caCertificatePEM: try ca.certificatePEM, certificatePEM: old.certificate, privateKeyPEM: old.key))
        return directory
    }

    static func write(_ text: String, to path: String) throws {
        #expect(
            FileManager.default.createFile(
                atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]))
    }

    @Test("a replacement stopped between its two renames is finished when the agent next reads its credentials")
    func stoppedBetweenRenames() throws {
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let (old, new) = (try Self.pair(ca), try Self.pair(ca))
        let directory = try Self.directory(holding: old, ca: ca)
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        // The certificate was renamed into place; the key is still the .new file.
        try Self.write(new.certificate, to: directory.certificatePath)
        try Self.write(new.key, to: directory.privateKeyPath + ".new")
        let read = try directory.readCredentials()
        #expect(read.certificatePEM == new.certificate)
        #expect(read.privateKeyPEM == new.key)
        #expect(!FileManager.default.fileExists(atPath: directory.privateKeyPath + ".new"))
    }

    @Test("a replacement stopped before its first rename leaves the old pair, and its new files are removed")
    func stoppedBeforeRenames() throws {
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let (old, new) = (try Self.pair(ca), try Self.pair(ca))
        let directory = try Self.directory(holding: old, ca: ca)
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        try Self.write(new.key, to: directory.privateKeyPath + ".new")
        try Self.write(new.certificate, to: directory.certificatePath + ".new")
        let read = try directory.readCredentials()
        #expect(read.certificatePEM == old.certificate)
        #expect(read.privateKeyPEM == old.key)
        #expect(!FileManager.default.fileExists(atPath: directory.privateKeyPath + ".new"))
        #expect(!FileManager.default.fileExists(atPath: directory.certificatePath + ".new"))
    }

    @Test("a completed replacement holds the new pair, 0600, with no file of it left over")
    func completed() throws {
        let ca = try ClusterCA.create(cluster: "test", now: Date())
        let (old, new) = (try Self.pair(ca), try Self.pair(ca))
        let directory = try Self.directory(holding: old, ca: ca)
        defer { try? FileManager.default.removeItem(atPath: directory.path) }
        try directory.replaceKeyAndCertificate(certificatePEM: new.certificate, privateKeyPEM: new.key)
        let read = try directory.readCredentials()
        #expect(read.certificatePEM == new.certificate)
        #expect(read.privateKeyPEM == new.key)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(files == ["agent.key", "agent.pem", "ca.pem"], "\(files)")
        for file in files {
            #expect(try AgentRenewalTests.mode(directory.path + "/" + file) == 0o600, "\(file)")
        }
    }
}
