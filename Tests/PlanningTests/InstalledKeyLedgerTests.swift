import Kernel
import MeshwardCore
import Testing

@testable import ReconcilerTestSupport

/// The ledger the fault tests check "no reused SPI or key" with: it must catch each kind of
/// reuse, and only reuses.
@Suite("The installed-key ledger")
struct InstalledKeyLedgerTests {
    static let receiver = IPAddress("198.18.0.12")!
    static let sender = IPAddress("198.18.0.11")!

    static func sa(spi: UInt32, key: UInt8) -> SecurityAssociation {
        SecurityAssociation(
            source: sender, destination: receiver, spi: SPI(spi), reqid: .meshwardDefault, cipher: .aesGCM256,
            key: .material(KeyMaterial(bytes: Array(repeating: key, count: 36))))
    }

    /// A history of operations sent, each to a node with its outcome, and whether it reuses.
    struct History: CustomTestStringConvertible, Sendable {
        let name: String
        let operations: [(node: String, operation: KernelOperation, outcome: OperationOutcome)]
        let reuses: Bool
        var testDescription: String { name }
    }

    static let histories: [History] = [
        History(
            name: "one SA on its two nodes, and sent again after a lost answer: no reuse",
            operations: [
                ("n1", .addSA(sa(spi: 0x100, key: 1)), .applied), ("n2", .addSA(sa(spi: 0x100, key: 1)), .applied),
                ("n2", .addSA(sa(spi: 0x100, key: 1)), .indeterminate(reason: "lost")),
                ("n2", .addSA(sa(spi: 0x101, key: 2)), .applied),
            ], reuses: false),
        History(
            name: "an SA whose deletion was refused, sent again: no reuse",
            operations: [
                ("n2", .addSA(sa(spi: 0x100, key: 1)), .applied),
                ("n2", .deleteSA(sa(spi: 0x100, key: 1).identifier), .failed(errno: 1, message: nil)),
                ("n2", .addSA(sa(spi: 0x100, key: 1)), .applied),
            ], reuses: false),
        History(
            name: "an SPI at its destination sent with a second key",
            operations: [
                ("n1", .addSA(sa(spi: 0x100, key: 1)), .applied), ("n2", .addSA(sa(spi: 0x100, key: 2)), .applied),
            ],
            reuses: true),
        History(
            name: "a key sent again under another SPI",
            operations: [
                ("n2", .addSA(sa(spi: 0x100, key: 1)), .applied), ("n2", .addSA(sa(spi: 0x101, key: 1)), .applied),
            ],
            reuses: true),
        History(
            name: "an SA installed again on a node after it was deleted there",
            operations: [
                ("n2", .addSA(sa(spi: 0x100, key: 1)), .applied),
                ("n2", .deleteSA(sa(spi: 0x100, key: 1).identifier), .applied),
                ("n2", .addSA(sa(spi: 0x100, key: 1)), .applied),
            ], reuses: true),
    ]

    @Test("the ledger finds a reuse exactly when an SPI or a key is used twice", arguments: histories)
    func findsReuses(_ history: History) {
        var ledger = InstalledKeyLedger()
        for (node, operation, outcome) in history.operations { ledger.note(operation, on: node, outcome: outcome) }
        #expect(ledger.reuses.isEmpty != history.reuses, "\(ledger.reuses)")
    }
}
