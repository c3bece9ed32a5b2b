import Foundation
import Identity
import Logging
import Synchronization
import X509

/// The agent's side of a certificate renewal: a new key and its CSR on request, then the
/// certificate the controller issued for it, checked and written in place of the old pair.
///
/// The old key and certificate serve until the new pair is written: a renewal that stops
/// half-way (no certificate comes, it does not verify, the directory cannot be written) changes
/// nothing, and the next one makes a new key again. Once the new pair is written, the server
/// listens again with it (`listenAgain`, set by `AgentServer`) before the controller is told.
final class CertificateRenewer: Sendable {
    let node: String
    let cluster: String
    private let ca: Certificate
    private let directory: AgentDirectory?
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let pending = Mutex<RenewalKey?>(nil)
    private let current: Mutex<AgentCredentials>
    private let switcher = Mutex<(@Sendable (AgentCredentials) async -> Void)?>(nil)

    init(
        credentials: AgentCredentials, node: String, cluster: String, ca: Certificate, directory: AgentDirectory?,
        now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.node = node
        self.cluster = cluster
        self.ca = ca
        self.directory = directory
        self.now = now
        self.logger = logger
        current = Mutex(credentials)
    }

    /// What replaces the listener with one on the new credentials (`AgentServer`).
    func onRenewed(_ body: @escaping @Sendable (AgentCredentials) async -> Void) {
        switcher.withLock { $0 = body }
    }

    /// Replaces the listener with one on `credentials`, and returns once it listens.
    func listenAgain(with credentials: AgentCredentials) async {
        guard let body = switcher.withLock({ $0 }) else { return }
        await body(credentials)
    }

    /// The credentials the agent serves with (or serves with once it listens again).
    var credentials: AgentCredentials { current.withLock { $0 } }

    /// Makes a new key, replacing any earlier renewal's that got no certificate, and returns the
    /// CSR for it.
    func request() throws -> [UInt8] {
        let key = try RenewalKey(cluster: cluster, node: node)
        let csr = try key.csrDER
        pending.withLock { $0 = key }
        logger.info("made a new key for a certificate renewal", metadata: ["node": "\(node)"])
        return csr
    }

    /// Checks `certificateDER` against the pending key and the cluster CA, writes the new key and
    /// certificate into the directory, and returns the new credentials. Throws when there is no
    /// pending key, the certificate is refused, or the directory cannot be written; the old
    /// pair then stays in use and on disk.
    func complete(certificateDER: [UInt8]) throws -> AgentCredentials {
        try pending.withLock { pending in
            guard let key = pending else {
                throw RenewalError.nothingPending(node: node)
            }
            let certificatePEM = try key.accept(certificateDER: certificateDER, ca: ca, now: now())
            let renewed = AgentCredentials(
                caCertificatePEM: credentials.caCertificatePEM, certificatePEM: certificatePEM,
                privateKeyPEM: key.privateKeyPEM)
            try directory?.replaceKeyAndCertificate(certificatePEM: certificatePEM, privateKeyPEM: key.privateKeyPEM)
            pending = nil
            current.withLock { $0 = renewed }
            return renewed
        }
    }
}

/// Why an agent did not take a renewed certificate.
enum RenewalError: Error, CustomStringConvertible {
    case nothingPending(node: String)

    var description: String {
        switch self {
        case .nothingPending(let node):
            "agent of node \(node) has no renewal key waiting for a certificate (it restarted since the "
                + "renewal was requested); the controller's next renewal starts again"
        }
    }
}
