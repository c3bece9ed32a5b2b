import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The `SPIReservations` role, through `issueGenerations`, run against every conformer.
@Suite("Store roles: SPI reservations")
struct SPIReservationTests {
    /// A narrow range makes "never reissued" observable: once its 8 values are used, issuing fails.
    static let narrow: ClosedRange<UInt32> = 0x100...0x107

    @Test("an SPI is never issued twice for one destination, across channels", arguments: StoreConformer.all)
    func neverReissued(conformer: StoreConformer) async throws {
        let test = try conformer.make(spiRange: Self.narrow)
        var spis: [SPI] = []
        for index in 0..<8 {
            // Different channels, one destination.
            spis.append(try await test.store.issue(channel("n\(index % 3)", "hub")).spi)
        }
        #expect(Set(spis).count == 8)
        #expect(spis.allSatisfy { Self.narrow.contains($0.rawValue) })

        let error = await #expect(throws: StoreError.self) { try await test.store.issue(channel("n9", "hub")) }
        #expect(error?.description.contains("no SPI is left to issue for destination 198.18.1.2") == true)

        // Another destination has its own space.
        #expect(try await test.store.issue(channel("n1", "other"), destination: "198.18.1.3").spi.rawValue >= 0x100)
    }

    @Test(
        "SPIs stay reserved after their channel is removed: never issued again, still listed as reserved",
        arguments: StoreConformer.all)
    func reservedAfterRemoval(conformer: StoreConformer) async throws {
        let test = try conformer.make(spiRange: Self.narrow)
        let a = channel("a", "hub")
        var first: [SPI] = []
        for _ in 0..<4 { first.append(try await test.store.issue(a).spi) }
        try await test.store.removeChannels([a])
        #expect(try await test.store.reservedSPIs(for: address("198.18.1.2")) == Set(first))

        var second: [SPI] = []
        for _ in 0..<4 { second.append(try await test.store.issue(a).spi) }
        #expect(Set(first).isDisjoint(with: second))
        try await test.store.removeChannels([a])
        #expect(try await test.connect().reservedSPIs(for: address("198.18.1.2")) == Set(first + second))
        #expect(try await test.store.reservedSPIs(for: address("198.18.1.3")).isEmpty)
        await #expect(throws: StoreError.self) { try await test.store.issue(a) }
    }

    @Test("foreign SPIs seen on the destination are avoided", arguments: StoreConformer.all)
    func avoidsForeign(conformer: StoreConformer) async throws {
        let test = try conformer.make(spiRange: Self.narrow)
        let foreign = Set((0x100...0x106).map { SPI($0) })
        #expect(try await test.store.issue(channel("a", "hub"), avoiding: foreign).spi == SPI(0x107))
        // Once 0x107 is issued, nothing outside the foreign ones is left.
        await #expect(throws: StoreError.self) { try await test.store.issue(channel("b", "hub"), avoiding: foreign) }
        // Without the foreign ones there is room again.
        #expect(try await test.store.issue(channel("b", "hub")).spi != SPI(0x107))
    }

    @Test("the full range issues SPIs of at least 0x100, distinct", arguments: StoreConformer.all)
    func fullRange(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let requests = (0..<2000).map { index in
            GenerationRequest(
                channel: channel("n\(index)", "hub"), cipher: .aesGCM128, source: address("198.18.0.1"),
                destination: address("198.18.1.1"))
        }
        let spis = try await test.store.issueGenerations(requests, now: t0).map(\.spi)
        #expect(Set(spis).count == spis.count)
        #expect(spis.allSatisfy { $0.rawValue >= SPI.minimumIssued })
    }
}
