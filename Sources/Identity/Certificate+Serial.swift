import MeshwardCore
import X509

extension Certificate {
    /// The certificate's serial number in the form Meshward prints, stores and compares
    /// (`CertificateSerial`: two hex digits per byte, `0c:ff:01`).
    public var serial: CertificateSerial { CertificateSerial(bytes: serialNumber.bytes) }
}
