import Foundation
import MeshwardCore
import Testing

@testable import Store

@Suite("SPI reservation")
struct SPIReservationTests {
    /// A narrow range makes "never reissued" observable: once its 8 values are used, issuing fails.
    static let narrow: ClosedRange<UInt32> = 0x100...0x107

    @Test("an SPI is never issued twice for one destination, across channels", arguments: StoreKind.allCases)
    func neverReissued(kind: StoreKind) throws {
        let test = try TestStore(kind, spiRange: Self.narrow)
        var spis: [SPI] = []
        for index in 0..<8 {
            // Different channels, one destination.
            spis.append(try test.store.issue(channel("n\(index % 3)", "hub")).spi)
        }
        #expect(Set(spis).count == 8)
        #expect(spis.allSatisfy { Self.narrow.contains($0.rawValue) })

        let error = #expect(throws: StoreError.self) { try test.store.issue(channel("n9", "hub")) }
        #expect(error?.description.contains("no SPI is left to issue for destination 198.18.1.2") == true)

        // Another destination has its own space.
        #expect(try test.store.issue(channel("n1", "other"), destination: "198.18.1.3").spi.rawValue >= 0x100)
    }

    @Test("SPIs stay reserved after the channel is removed", arguments: StoreKind.allCases)
    func reservedAfterRemoval(kind: StoreKind) throws {
        let test = try TestStore(kind, spiRange: Self.narrow)
        let a = channel("a", "hub")
        var first: [SPI] = []
        for _ in 0..<4 { first.append(try test.store.issue(a).spi) }
        try test.store.removeChannel(a)

        var second: [SPI] = []
        for _ in 0..<4 { second.append(try test.store.issue(a).spi) }
        #expect(Set(first).isDisjoint(with: second))
        try test.store.removeChannel(a)
        #expect(throws: StoreError.self) { try test.store.issue(a) }
    }

    @Test("foreign SPIs seen on the destination are avoided", arguments: StoreKind.allCases)
    func avoidsForeign(kind: StoreKind) throws {
        let test = try TestStore(kind, spiRange: Self.narrow)
        let foreign = Set((0x100...0x106).map { SPI($0) })
        #expect(try test.store.issue(channel("a", "hub"), avoiding: foreign).spi == SPI(0x107))
        // Once 0x107 is issued, nothing outside the foreign ones is left.
        #expect(throws: StoreError.self) { try test.store.issue(channel("b", "hub"), avoiding: foreign) }
        // Without the foreign ones there is room again.
        #expect(try test.store.issue(channel("b", "hub")).spi != SPI(0x107))
    }

    @Test("the full range issues SPIs of at least 0x100, distinct", arguments: StoreKind.allCases)
    func fullRange(kind: StoreKind) throws {
        let test = try TestStore(kind)
        let requests = (0..<2000).map { index in
            GenerationRequest(
                channel: channel("n\(index)", "hub"), cipher: .aesGCM128, source: address("198.18.0.1"),
                destination: address("198.18.1.1"))
        }
        let spis = try test.store.issueGenerations(requests, now: t0).map(\.spi)
        #expect(Set(spis).count == spis.count)
        #expect(spis.allSatisfy { $0.rawValue >= SPI.minimumIssued })
    }

    @Test("the issued-SPI table refuses deletes", arguments: StoreKind.allCases)
    func issuedTableIsPermanent(kind: StoreKind) throws {
        let test = try TestStore(kind)
        _ = try test.store.issue(channel("a", "b"))
        #expect(throws: (any Error).self) {
            try test.store.write("tamper") { db in try db.execute(sql: "DELETE FROM issued_spis") }
        }
    }
}
