import MeshwardCore

/// A TLS credential kept in the Store: a certificate, which is public, and its private key,
/// sealed with AES-256-GCM under the master key like every channel key.
public struct StoredCredential: Sendable {
    /// The certificate, PEM.
    public var certificatePEM: String
    /// The private key (DER for the CA, PEM bytes for the controller). Never logged.
    public var privateKey: KeyMaterial

    public init(certificatePEM: String, privateKey: KeyMaterial) {
        self.certificatePEM = certificatePEM
        self.privateKey = privateKey
    }
}
