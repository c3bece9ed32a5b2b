import MeshwardCore
import X509

extension Certificate {
    /// The certificate's serial number in the form Meshward prints, stores and compares
    /// (`CertificateSerial`: two hex digits per byte, `0c:ff:01`).
    public var serial: CertificateSerial { CertificateSerial(bytes: serialNumber.bytes) }
}

extension DefaultStringInterpolation {
    /// `"\(certificate.serialNumber)"` in this module prints `CertificateSerial`'s form, never
    /// swift-certificates' own description (which drops each byte's leading zero, `c:ff:1`), so
    /// that a serial in a message or a revocation lookup reads as the Store holds it.
    mutating func appendInterpolation(_ serialNumber: Certificate.SerialNumber) {
        appendLiteral(CertificateSerial(bytes: serialNumber.bytes).description)
    }
}
