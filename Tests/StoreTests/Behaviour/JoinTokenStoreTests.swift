import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The `JoinTokenStore` role, run against every conformer: a token is stored as its verifier,
/// listed until spent or revoked, and spent once, atomically.
@Suite("Store roles: join tokens")
struct JoinTokenStoreTests {
    static func token(_ id: String, node: String = "web-1", expiresIn: TimeInterval = 3600) -> NewJoinToken {
        NewJoinToken(
            id: id, node: node, verifier: (0..<32).map { UInt8($0) ^ UInt8(id.utf8.count) },
            expiresAt: t0.addingTimeInterval(expiresIn))
    }

    /// The error `body` throws, as a `JoinTokenError`, or nil when it throws none.
    static func refusal(_ body: () async throws -> Void) async -> JoinTokenError? {
        do {
            try await body()
            return nil
        } catch let error as JoinTokenError {
            return error
        } catch {
            Issue.record("expected a JoinTokenError, got \(error)")
            return nil
        }
    }

    @Test(
        "a created token is read back with its verifier and listed unspent with its node, expiry and creation",
        arguments: StoreConformer.all)
    func createdAndListed(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        #expect(try await test.store.unspentJoinTokens().isEmpty)
        #expect(try await test.store.joinToken(id: "00112233aabbccdd") == nil)
        let first = Self.token("00112233aabbccdd")
        let second = Self.token("ffeeddccbbaa9988", node: "db-1", expiresIn: 60)
        try await test.store.createJoinToken(first, now: t0)
        try await test.store.createJoinToken(second, now: t0.addingTimeInterval(1))

        let other = try test.connect()
        let record = try #require(try await other.joinToken(id: first.id))
        #expect(record.node == "web-1")
        #expect(record.verifier == first.verifier)
        #expect(record.createdAt == t0)
        #expect(record.expiresAt == first.expiresAt)
        #expect(record.spentAt == nil && record.revokedAt == nil)
        #expect(
            try await other.unspentJoinTokens() == [
                JoinTokenSummary(id: first.id, node: "web-1", createdAt: t0, expiresAt: first.expiresAt),
                JoinTokenSummary(
                    id: second.id, node: "db-1", createdAt: t0.addingTimeInterval(1), expiresAt: second.expiresAt),
            ])
    }

    @Test("a second token with a stored id is refused naming the id", arguments: StoreConformer.all)
    func duplicateRefused(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        try await test.store.createJoinToken(Self.token("00112233aabbccdd"), now: t0)
        let error = await Self.refusal {
            try await test.store.createJoinToken(Self.token("00112233aabbccdd", node: "db-1"), now: t0)
        }
        #expect(error == .duplicate(id: "00112233aabbccdd"))
        #expect(try await test.store.joinToken(id: "00112233aabbccdd")?.node == "web-1")
    }

    @Test(
        "a spend marks the token spent at the time given, drops it from the list, and a second spend is refused as spent",
        arguments: StoreConformer.all)
    func spentOnce(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let token = Self.token("00112233aabbccdd")
        try await test.store.createJoinToken(token, now: t0)
        let spendAt = t0.addingTimeInterval(10)
        let spent = try await test.store.spendJoinToken(id: token.id, node: "web-1", now: spendAt)
        #expect(spent.spentAt == spendAt)
        #expect(spent.verifier == token.verifier)
        #expect(try await test.store.joinToken(id: token.id)?.spentAt == spendAt)
        #expect(try await test.store.unspentJoinTokens().isEmpty)

        let again = await Self.refusal {
            _ = try await test.store.spendJoinToken(id: token.id, node: "web-1", now: spendAt.addingTimeInterval(1))
        }
        #expect(again == .spent(id: token.id, at: spendAt))
        #expect(again?.description.contains("spent at") == true)
        #expect(try await test.store.joinToken(id: token.id)?.spentAt == spendAt)
    }

    @Test(
        "a spend is refused for an unknown id, an expired token, a revoked token, and a token of another node, and leaves the token unspent",
        arguments: StoreConformer.all)
    func spendRefusals(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let expiring = Self.token("0000000000000001", expiresIn: 60)
        let revoked = Self.token("0000000000000002")
        let other = Self.token("0000000000000003", node: "db-1")
        for token in [expiring, revoked, other] { try await test.store.createJoinToken(token, now: t0) }
        let revokedAt = t0.addingTimeInterval(5)
        try await test.store.revokeJoinToken(id: revoked.id, now: revokedAt)

        let unknown = await Self.refusal {
            _ = try await test.store.spendJoinToken(id: "0000000000000009", node: "web-1", now: t0)
        }
        #expect(unknown == .unknown(id: "0000000000000009"))
        // Expiry is exact: at the expiry instant the token is expired, just before it is not.
        let expired = await Self.refusal {
            _ = try await test.store.spendJoinToken(id: expiring.id, node: "web-1", now: expiring.expiresAt)
        }
        #expect(expired == .expired(id: expiring.id, at: expiring.expiresAt))
        let wasRevoked = await Self.refusal {
            _ = try await test.store.spendJoinToken(id: revoked.id, node: "web-1", now: t0.addingTimeInterval(6))
        }
        #expect(wasRevoked == .revoked(id: revoked.id, at: revokedAt))
        let wrongNode = await Self.refusal {
            _ = try await test.store.spendJoinToken(id: other.id, node: "web-1", now: t0)
        }
        #expect(wrongNode == .wrongNode(id: other.id, issuedFor: "db-1", presentedFor: "web-1"))
        #expect(wrongNode?.description.contains("issued for node 'db-1', not 'web-1'") == true)

        for token in [expiring, other] {
            #expect(try await test.store.joinToken(id: token.id)?.spentAt == nil)
        }
        #expect(try await test.store.unspentJoinTokens().map(\.id) == [expiring.id, other.id])
        let justInTime = try await test.store.spendJoinToken(
            id: expiring.id, node: "web-1", now: expiring.expiresAt.addingTimeInterval(-0.5))
        #expect(justInTime.spentAt != nil)
    }

    @Test(
        "revoking drops a token from the list; revoking it again, an unknown or a spent token is refused naming why",
        arguments: StoreConformer.all)
    func revoked(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let kept = Self.token("0000000000000001")
        let gone = Self.token("0000000000000002")
        let spent = Self.token("0000000000000003")
        for token in [kept, gone, spent] { try await test.store.createJoinToken(token, now: t0) }
        let spentAt = t0.addingTimeInterval(2)
        _ = try await test.store.spendJoinToken(id: spent.id, node: "web-1", now: spentAt)
        let revokedAt = t0.addingTimeInterval(3)
        try await test.store.revokeJoinToken(id: gone.id, now: revokedAt)
        #expect(try await test.store.unspentJoinTokens().map(\.id) == [kept.id])
        #expect(try await test.store.joinToken(id: gone.id)?.revokedAt == revokedAt)

        let twice = await Self.refusal { try await test.store.revokeJoinToken(id: gone.id, now: t0) }
        #expect(twice == .revoked(id: gone.id, at: revokedAt))
        let unknown = await Self.refusal { try await test.store.revokeJoinToken(id: "0000000000000009", now: t0) }
        #expect(unknown == .unknown(id: "0000000000000009"))
        let afterSpend = await Self.refusal { try await test.store.revokeJoinToken(id: spent.id, now: t0) }
        #expect(afterSpend == .spent(id: spent.id, at: spentAt))
        #expect(try await test.store.joinToken(id: spent.id)?.revokedAt == nil)
    }

    @Test(
        "two connections spending one token at once: exactly one wins, the other is refused as spent at the winner's time",
        arguments: StoreConformer.all)
    func concurrentSpends(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        // Many rounds, each a fresh token, so that the two spends overlap in some of them.
        for round in 0..<20 {
            let token = Self.token(String(format: "%016x", round))
            try await test.store.createJoinToken(token, now: t0)
            let connections = [test.store, try test.connect()]
            let results = await withTaskGroup(of: (Int, Result<JoinTokenRecord, any Error>).self) { group in
                for (index, store) in connections.enumerated() {
                    group.addTask {
                        let now = t0.addingTimeInterval(Double(index + 1))
                        do {
                            return (
                                index, .success(try await store.spendJoinToken(id: token.id, node: "web-1", now: now))
                            )
                        } catch {
                            return (index, .failure(error))
                        }
                    }
                }
                var all: [(Int, Result<JoinTokenRecord, any Error>)] = []
                for await result in group { all.append(result) }
                return all
            }
            let winners = results.compactMap { _, result in try? result.get() }
            #expect(winners.count == 1, "round \(round)")
            let stored = try #require(try await test.store.joinToken(id: token.id))
            #expect(stored.spentAt == winners.first?.spentAt, "round \(round)")
            for (_, result) in results {
                if case .failure(let error) = result {
                    #expect(error as? JoinTokenError == .spent(id: token.id, at: try #require(stored.spentAt)))
                }
            }
        }
    }
}
