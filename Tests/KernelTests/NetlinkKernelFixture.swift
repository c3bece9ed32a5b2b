import Foundation
import Kernel
import Logging
import MeshwardCore
import MeshwardTestSupport
import Synchronization

/// The behavioural suite's fixture over this machine's kernel: each node is a throwaway
/// network namespace (`mwtest-<random>-<node>`), deleted by `tearDown`. Foreign objects are
/// installed with `ip xfrm`, as an operator or another daemon would, so the backend meets
/// objects it did not write itself.
///
/// Whether the kernel holds SAs is found out once per process, by adding an ESP SA in a
/// throwaway namespace: this machine's kernel has XFRM but no ESP, a test VM's kernel has both.
final class NetlinkKernelFixture: KernelFixture {
    private let tag = UInt32.random(in: 0...UInt32.max)
    private let namespaces = Mutex<[String: TestNamespace]>([:])

    let missingSASupport: String?

    /// A fixture that knows, from `espProbe`, whether the kernel holds SAs.
    static func make() async -> NetlinkKernelFixture {
        NetlinkKernelFixture(missingSASupport: await espProbe.value)
    }

    private init(missingSASupport: String?) {
        self.missingSASupport = missingSASupport
    }

    /// Why the kernel cannot hold ESP SAs, or nil when it can; found once.
    private static let espProbe = Task<String?, Never> {
        let namespace: TestNamespace
        do {
            namespace = try await TestNamespace.create()
        } catch {
            return "could not make a namespace to probe for ESP: \(error)"
        }
        let missing = await missingESP(in: namespace)
        await namespace.delete()
        return missing
    }

    private static func missingESP(in namespace: TestNamespace) async -> String? {
        do {
            let key = KeyMaterial(bytes: [UInt8](repeating: 7, count: Cipher.aesGCM256.keyLength))
            try await namespace.ip([
                "xfrm", "state", "add", "src", "198.18.0.1", "dst", "198.18.0.2", "proto", "esp", "spi", "0x100",
                "reqid", "1", "mode", "transport", "aead", "rfc4106(gcm(aes))", hex(key.bytes), "128",
            ])
            return nil
        } catch let failure as TestNamespace.CommandFailed {
            let answer = failure.output.trimmingCharacters(in: .whitespacesAndNewlines)
            return "this kernel cannot hold ESP SAs (`ip xfrm state add` answered: \(answer)); "
                + "SA cases need a kernel with ESP"
        } catch {
            return "this kernel cannot hold ESP SAs (\(error)); SA cases need a kernel with ESP"
        }
    }

    func makeNode(_ name: String, addresses: [IPAddress]) async throws {
        let namespace = TestNamespace(name: "mwtest-\(tag)-\(name)")
        try await TestNamespace.run(["netns", "add", namespace.name])
        namespaces.withLock { $0[name] = namespace }
    }

    func kernel(for node: String, reqid: Reqid) throws -> any NodeKernel {
        try NetlinkKernel(
            node: node, endpoint: .namespace(try namespace(node).name), reqid: reqid, logger: Fixtures.logger)
    }

    /// Installs each operation with `ip xfrm` (adds only; foreign objects are set up, never
    /// changed, by the suite).
    func installForeign(_ operations: [KernelOperation], on node: String) async throws {
        let namespace = try namespace(node)
        for operation in operations {
            switch operation {
            case .addPolicy(let policy):
                try await namespace.ip(Self.ipArguments(adding: policy))
            case .addSA(let association):
                try await namespace.ip(Self.ipArguments(adding: association))
            default:
                throw FixtureError(message: "foreign objects are only added, not \(operation)")
            }
        }
    }

    func tearDown() async {
        let made = namespaces.withLock { namespaces in
            defer { namespaces.removeAll() }
            return Array(namespaces.values)
        }
        for namespace in made { await namespace.delete() }
    }

    private func namespace(_ node: String) throws -> TestNamespace {
        guard let namespace = namespaces.withLock({ $0[node] }) else {
            throw FixtureError(message: "no node \(node) was made")
        }
        return namespace
    }

    /// `ip xfrm policy add` for `policy`.
    static func ipArguments(adding policy: SecurityPolicy) -> [String] {
        var arguments = [
            "xfrm", "policy", "add", "src", "\(policy.selector.source)", "dst", "\(policy.selector.destination)",
        ]
        let traffic = policy.selector.traffic
        if let transport = traffic.transport {
            arguments += ["proto", transport.rawValue]
            if let port = traffic.sourcePort { arguments += ["sport", "\(port)"] }
            if let port = traffic.destinationPort { arguments += ["dport", "\(port)"] }
        }
        arguments += ["dir", policy.direction.rawValue, "priority", "\(policy.priority)", "tmpl"]
        arguments += ["src", "\(policy.template.source)", "dst", "\(policy.template.destination)", "proto", "esp"]
        if let spi = policy.template.spi { arguments += ["spi", spi.hex] }
        arguments += ["reqid", "\(policy.template.reqid.rawValue)", "mode", "transport"]
        if policy.template.isOptional { arguments += ["level", "use"] }
        return arguments
    }

    /// `ip xfrm state add` for `association`, with its key, replay window and ESN flag.
    static func ipArguments(adding association: SecurityAssociation) throws -> [String] {
        guard let key = association.key.material else {
            throw FixtureError(message: "a foreign SA needs key bytes, not a fingerprint")
        }
        let cipher = association.cipher
        var arguments = [
            "xfrm", "state", "add", "src", "\(association.source)", "dst", "\(association.destination)",
            "proto", "esp", "spi", association.spi.hex, "reqid", "\(association.reqid.rawValue)", "mode", "transport",
        ]
        let encryptionKey = Array(key.bytes.prefix(cipher.encryptionKeyLength))
        if let integrityName = cipher.kernelIntegrityName {
            let integrityKey = Array(key.bytes.dropFirst(cipher.encryptionKeyLength))
            arguments += ["enc", cipher.kernelEncryptionName, hex(encryptionKey)]
            arguments += ["auth-trunc", integrityName, hex(integrityKey), "\(cipher.icvBits)"]
        } else {
            arguments += ["aead", cipher.kernelEncryptionName, hex(encryptionKey), "\(cipher.icvBits)"]
        }
        arguments += ["replay-window", "\(association.replayWindow)"]
        if association.extendedSequenceNumbers { arguments += ["flag", "esn"] }
        return arguments
    }

    static func hex(_ bytes: [UInt8]) -> String {
        "0x" + bytes.map { String(format: "%02x", $0) }.joined()
    }
}
