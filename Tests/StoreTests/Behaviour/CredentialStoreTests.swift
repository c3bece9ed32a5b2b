import Foundation
import MeshwardCore
import Testing

@testable import Store

/// The `CredentialStore` role, run against every conformer: certificates in the clear, private
/// keys sealed under the master key and bound to their name.
@Suite("Store roles: credentials")
struct CredentialStoreTests {
    static func credential(_ certificate: String) throws -> StoredCredential {
        StoredCredential(
            certificatePEM: "-----BEGIN CERTIFICATE-----\n\(certificate)\n-----END CERTIFICATE-----\n",
            privateKey: try KeyMaterial.random(count: 48))
    }

    @Test(
        "a stored credential comes back with its certificate and key; an unknown name is nil",
        arguments: StoreConformer.all)
    func storedAndRead(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        #expect(try await test.store.credential(named: "cluster-ca") == nil)
        let ca = try Self.credential("ca")
        let stored = try await test.store.storeCredentialIfAbsent(ca, named: "cluster-ca", now: t0)
        #expect(stored.certificatePEM == ca.certificatePEM)
        #expect(stored.privateKey.bytes == ca.privateKey.bytes)
        let read = try #require(try await test.store.credential(named: "cluster-ca"))
        #expect(read.certificatePEM == ca.certificatePEM)
        #expect(read.privateKey.bytes == ca.privateKey.bytes)
        #expect(try await test.store.credential(named: "controller:prod") == nil)
    }

    @Test(
        "two controllers storing a credential under one name both end up with the first one stored",
        arguments: StoreConformer.all)
    func firstStoredWins(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let other = try test.connect()
        let first = try Self.credential("first")
        let second = try Self.credential("second")
        let mine = try await test.store.storeCredentialIfAbsent(first, named: "cluster-ca", now: t0)
        let theirs = try await other.storeCredentialIfAbsent(second, named: "cluster-ca", now: t0)
        #expect(mine.certificatePEM == first.certificatePEM)
        #expect(theirs.certificatePEM == first.certificatePEM)
        #expect(theirs.privateKey.bytes == first.privateKey.bytes)
    }

    @Test(
        "replacing a credential changes it for every connection; other names are untouched",
        arguments: StoreConformer.all)
    func replaced(conformer: StoreConformer) async throws {
        let test = try conformer.make()
        let ca = try Self.credential("ca")
        let old = try Self.credential("controller-old")
        let renewed = try Self.credential("controller-new")
        _ = try await test.store.storeCredentialIfAbsent(ca, named: "cluster-ca", now: t0)
        _ = try await test.store.storeCredentialIfAbsent(old, named: "controller:prod", now: t0)
        try await test.store.replaceCredential(renewed, named: "controller:prod", now: t0.addingTimeInterval(60))
        // Replacing a name that holds nothing stores it.
        try await test.store.replaceCredential(old, named: "controller:staging", now: t0)

        let other = try test.connect()
        let read = try #require(try await other.credential(named: "controller:prod"))
        #expect(read.certificatePEM == renewed.certificatePEM)
        #expect(read.privateKey.bytes == renewed.privateKey.bytes)
        #expect(try await other.credential(named: "cluster-ca")?.privateKey.bytes == ca.privateKey.bytes)
        #expect(try await other.credential(named: "controller:staging")?.certificatePEM == old.certificatePEM)
    }
}
