import Foundation
import Kernel
import MeshwardCore
import Reconciler
import Testing

@testable import Controller

/// The kernels a plan is rehearsed on (`RehearsalKernels`): a node's reading answers until an
/// operation reaches that node, which alone is then copied and takes the operation with the
/// kernel's semantics.
@Suite("Rehearsal kernels")
struct RehearsalKernelsTests {
    static let reqid = Reqid(7)
    static let web = IPAddress("198.18.0.1")!
    static let db = IPAddress("198.18.0.2")!

    static func association(spi: UInt32, reqid: Reqid = reqid) -> SecurityAssociation {
        SecurityAssociation(
            source: web, destination: db, spi: SPI(spi), reqid: reqid, cipher: .aesGCM256,
            key: .material(KeyMaterial(bytes: Array(repeating: 7, count: Cipher.aesGCM256.keyLength))))
    }

    static func kernels(foreign: Set<SAIdentifier> = []) -> RehearsalKernels {
        RehearsalKernels(
            readings: [
                "web": NodeObservation(securityAssociations: [association(spi: 0x100)]),
                "db": NodeObservation(
                    securityAssociations: [association(spi: 0x100)], statistics: ["XfrmInNoStates": 3],
                    foreignSPIs: foreign),
            ],
            unreachable: ["cache": "the agent did not answer"],
            addresses: ["web": [web], "db": [db]], reqid: reqid)
    }

    @Test("a node no operation reached answers with its reading, and no node is copied")
    func readingWithoutOperations() async throws {
        let kernels = Self.kernels()
        let observation = try await kernels.kernel(for: "web").observe()
        #expect(observation.securityAssociations == [Self.association(spi: 0x100)])
        #expect(kernels.copiedNodes.isEmpty)
    }

    @Test("an operation copies its node alone, which then answers with the operation applied")
    func operationCopiesOneNode() async throws {
        let kernels = Self.kernels()
        let db = try await kernels.kernel(for: "db")
        let results = try await db.apply([
            .addSA(Self.association(spi: 0x200)), .deleteSA(Self.association(spi: 0x100).identifier),
        ])
        #expect(results.map(\.outcome) == [.applied, .applied])
        #expect(kernels.copiedNodes == ["db"])
        let after = try await db.observe()
        #expect(after.securityAssociations.map(\.spi) == [SPI(0x200)])
        #expect(after.statistics == ["XfrmInNoStates": 3])
        let web = try await kernels.kernel(for: "web").observe()
        #expect(web.securityAssociations.map(\.spi) == [SPI(0x100)])
    }

    @Test(
        "the copy keeps the kernel's semantics: an SA added twice fails with EEXIST, a missing one deleted with ESRCH")
    func copyKeepsKernelSemantics() async throws {
        let kernels = Self.kernels()
        let db = try await kernels.kernel(for: "db")
        let results = try await db.apply([
            .addSA(Self.association(spi: 0x100)), .deleteSA(Self.association(spi: 0x300).identifier),
        ])
        #expect(results.map(\.outcome) == [.failed(errno: EEXIST, message: nil), .failed(errno: ESRCH, message: nil)])
    }

    @Test("an SA added over a foreign SA's identifier fails with EEXIST, and the others in its batch apply")
    func foreignIdentifierRefused() async throws {
        let foreign = Self.association(spi: 0x400, reqid: Reqid(99))
        let kernels = Self.kernels(foreign: [foreign.identifier])
        let db = try await kernels.kernel(for: "db")
        let results = try await db.apply([.addSA(Self.association(spi: 0x400)), .addSA(Self.association(spi: 0x500))])
        #expect(results.map(\.outcome) == [.failed(errno: EEXIST, message: nil), .applied])
        let after = try await db.observe()
        #expect(after.foreignSPIs == [foreign.identifier])
        #expect(after.securityAssociations.map(\.spi) == [SPI(0x100), SPI(0x500)])
    }

    @Test("a node that could not be read cannot be reached in the rehearsal either")
    func unreachableStaysUnreachable() async throws {
        let kernels = Self.kernels()
        await #expect(throws: KernelError.self) { try await kernels.kernel(for: "cache") }
        #expect(kernels.knownNodes == ["web", "db", "cache"])
    }
}
