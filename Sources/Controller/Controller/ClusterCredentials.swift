import Agent
import Foundation
import Identity
import MeshwardCore
import Reconciler
import Store

/// The cluster's TLS identities, kept in the Store: the CA (made on first use, its key sealed
/// under the master key) and the controller's own certificate (`spiffe://CLUSTER/controller`,
/// renewed from the same CA, in the Store, once half its life has passed; agents accept the new
/// one because it chains to the CA they hold). Agent directories are issued from the
/// same CA, and every serial issued to a node is recorded in the Store so that the node's
/// certificates can be revoked.
public struct ClusterCredentials {
    static let caName = "cluster-ca"
    static let controllerName = "controller"
    /// How long a controller certificate is valid; it is renewed well before.
    public static let controllerValidity: Duration = .seconds(30 * 86_400)

    let store: any CredentialStore & CertificateLedger
    let cluster: String

    public init(store: any CredentialStore & CertificateLedger, cluster: String) {
        self.store = store
        self.cluster = cluster
    }

    /// The cluster CA the Store holds; nil when it holds none (never made, or the Store was lost).
    public func storedAuthority() async throws -> ClusterCA? {
        guard let stored = try await store.credential(named: Self.caName) else { return nil }
        return try ClusterCA(
            cluster: cluster, certificatePEM: stored.certificatePEM, privateKeyDER: stored.privateKey.bytes)
    }

    /// The cluster CA, created and sealed in the Store on first use.
    public func certificateAuthority(now: Date) async throws -> ClusterCA {
        if let stored = try await store.credential(named: Self.caName) {
            return try ClusterCA(
                cluster: cluster, certificatePEM: stored.certificatePEM, privateKeyDER: stored.privateKey.bytes)
        }
        let created = try ClusterCA.create(cluster: cluster, now: now)
        let stored = try await store.storeCredentialIfAbsent(
            StoredCredential(
                certificatePEM: try created.certificatePEM, privateKey: KeyMaterial(bytes: created.privateKeyDER)),
            named: Self.caName, now: now)
        return try ClusterCA(
            cluster: cluster, certificatePEM: stored.certificatePEM, privateKeyDER: stored.privateKey.bytes)
    }

    /// The instant half of `credential`'s validity has passed: from then on it is renewed.
    static func halfLife(of credential: IssuedCredential) -> Date {
        halfLife(of: PeerVerifier.validity(of: credential.certificate))
    }

    /// The controller's credentials for dialling agents: the stored ones until half their life
    /// has passed, then a new key and certificate, stored in place of the old ones.
    public func controller(now: Date) async throws -> AgentCredentials {
        let ca = try await certificateAuthority(now: now)
        let name = Self.controllerName + ":" + cluster
        if let stored = try await store.credential(named: name) {
            let credential = try IssuedCredential(
                certificatePEM: stored.certificatePEM,
                privateKeyPEM: String(decoding: stored.privateKey.bytes, as: UTF8.self))
            if now < Self.halfLife(of: credential) {
                return try AgentCredentials(ca: ca, issued: credential)
            }
        }
        let issued = try ca.issue(for: .controller(cluster: cluster), now: now, validity: Self.controllerValidity)
        try await store.replaceCredential(
            StoredCredential(
                certificatePEM: try issued.certificatePEM,
                privateKey: KeyMaterial(bytes: Array(issued.privateKeyPEM.utf8))),
            named: name, now: now)
        return try AgentCredentials(ca: ca, issued: issued)
    }

    /// A new key and certificate for the agent of `node`, naming its addresses, valid for
    /// `validity` (the spec's `defaults.certificates.lifetime`); its serial is
    /// recorded as issued to `node` before it is returned.
    public func agent(
        node: String, addresses: [IPAddress], now: Date, validity: Duration
    ) async throws
        -> AgentCredentials
    {
        let ca = try await certificateAuthority(now: now)
        let issued = try ca.issue(
            for: .node(cluster: cluster, name: node), addresses: addresses, now: now, validity: validity)
        try await store.recordIssuedCertificate(
            IssuedCertificate(serial: issued.serial, node: node, issuedAt: now, notValidAfter: issued.notValidAfter))
        return try AgentCredentials(ca: ca, issued: issued)
    }
}

extension ClusterCredentials {
    /// The renewed certificate of `node`'s agent for the key in `csrDER` (made on the agent),
    /// naming the node's `addresses` (the spec's), valid for `validity`; its serial is recorded
    /// as issued to `node` before the DER is returned.
    public func renewAgent(
        node: String, csrDER: [UInt8], addresses: [IPAddress], now: Date, validity: Duration
    ) async throws -> [UInt8] {
        let ca = try await certificateAuthority(now: now)
        let certificate = try ca.issue(node: node, csrDER: csrDER, addresses: addresses, now: now, validity: validity)
        try await store.recordIssuedCertificate(
            IssuedCertificate(
                serial: certificate.serial.description, node: node, issuedAt: now,
                notValidAfter: certificate.notValidAfter))
        return try certificate.serializeAsPEM().derBytes
    }

    /// The instant half of a certificate's `validity` has passed: from then on it is renewed.
    public static func halfLife(of validity: ClosedRange<Date>) -> Date {
        validity.lowerBound.addingTimeInterval(validity.upperBound.timeIntervalSince(validity.lowerBound) / 2)
    }
}

extension ClusterCredentials {
    /// The Store's revoked serials as the verifier reads them.
    public static func revocationList(from store: any CertificateLedger) async throws -> RevocationList {
        var entries: [String: RevocationList.Entry] = [:]
        for revoked in try await store.revokedCertificates() {
            entries[revoked.serial] = RevocationList.Entry(
                node: revoked.node, revokedAt: revoked.revokedAt, reason: revoked.reason)
        }
        return RevocationList(entries: entries)
    }
}
