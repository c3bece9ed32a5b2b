import MeshwardCore

/// Names one SA: the kernel looks SAs up by (destination, SPI, protocol); the protocol is always ESP.
public struct SAIdentifier: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let destination: IPAddress
    public let spi: SPI

    public init(destination: IPAddress, spi: SPI) {
        self.destination = destination
        self.spi = spi
    }

    public var description: String { "esp \(destination) spi \(spi.hex)" }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(destination.mixedBits ^ UInt64(spi.rawValue))
    }

    public static func < (lhs: SAIdentifier, rhs: SAIdentifier) -> Bool {
        (lhs.destination, lhs.spi) < (rhs.destination, rhs.spi)
    }
}

/// Lifetime counters the kernel keeps for an SA (`xfrm_lifetime_cur`).
public struct SACounters: Sendable, Hashable, Codable {
    public var bytes: UInt64
    public var packets: UInt64
    /// Seconds since the epoch when the SA was added, as the kernel reports it.
    public var addTime: UInt64
    /// Seconds since the epoch of the SA's first use; 0 when never used.
    public var useTime: UInt64

    public init(bytes: UInt64 = 0, packets: UInt64 = 0, addTime: UInt64 = 0, useTime: UInt64 = 0) {
        self.bytes = bytes
        self.packets = packets
        self.addTime = addTime
        self.useTime = useTime
    }

    public static let zero = SACounters()
}

/// An ESP security association in transport mode, as Meshward writes it and as a node reports it.
///
/// Equality compares configuration and key, never counters: two observations of the same SA
/// with traffic in between are equal.
public struct SecurityAssociation: Sendable, CustomStringConvertible {
    public var source: IPAddress
    public var destination: IPAddress
    public var spi: SPI
    public var reqid: Reqid
    public var cipher: Cipher
    /// The key: `cipher.keyLength` bytes, encryption key (with salt) first, then integrity key.
    /// A backend that cannot report key bytes (the simulated kernel keeps fingerprints only)
    /// reports `.fingerprint`.
    public var key: SAKey
    /// The anti-replay window in packets. With `extendedSequenceNumbers` it travels in
    /// `XFRMA_REPLAY_ESN_VAL` and the legacy field is 0, as the kernel demands.
    public var replayWindow: UInt32
    /// 64-bit sequence numbers (ESN).
    public var extendedSequenceNumbers: Bool
    /// Counters as last observed; ignored by equality.
    public var counters: SACounters

    public init(
        source: IPAddress, destination: IPAddress, spi: SPI, reqid: Reqid, cipher: Cipher,
        key: SAKey, replayWindow: UInt32 = 128, extendedSequenceNumbers: Bool = true,
        counters: SACounters = .zero
    ) {
        self.source = source
        self.destination = destination
        self.spi = spi
        self.reqid = reqid
        self.cipher = cipher
        self.key = key
        self.replayWindow = replayWindow
        self.extendedSequenceNumbers = extendedSequenceNumbers
        self.counters = counters
    }

    public var identifier: SAIdentifier { SAIdentifier(destination: destination, spi: spi) }

    public var family: AddressFamily { destination.family }

    public var description: String {
        "SA \(source) -> \(destination) spi \(spi.hex) reqid \(reqid) \(cipher) key <redacted>"
    }
}

extension SecurityAssociation: Hashable {
    public static func == (lhs: SecurityAssociation, rhs: SecurityAssociation) -> Bool {
        lhs.source == rhs.source && lhs.destination == rhs.destination && lhs.spi == rhs.spi
            && lhs.reqid == rhs.reqid && lhs.cipher == rhs.cipher && lhs.key == rhs.key
            && lhs.replayWindow == rhs.replayWindow && lhs.extendedSequenceNumbers == rhs.extendedSequenceNumbers
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(identifier)
        hasher.combine(reqid)
        hasher.combine(cipher)
    }
}

/// An SA's key as a backend reports it: the bytes, or only their fingerprint.
///
/// Two keys are equal when their bytes are equal, or, when either side has only a
/// fingerprint, when the fingerprints are equal.
public enum SAKey: Sendable, Hashable, CustomStringConvertible {
    case material(KeyMaterial)
    case fingerprint(String)

    /// The key's fingerprint (`KeyMaterial.fingerprint`).
    public var fingerprint: String {
        switch self {
        case .material(let key): key.fingerprint
        case .fingerprint(let value): value
        }
    }

    /// The bytes, when the backend reported them.
    public var material: KeyMaterial? {
        if case .material(let key) = self { return key }
        return nil
    }

    public var description: String { "<redacted>" }

    public static func == (lhs: SAKey, rhs: SAKey) -> Bool {
        if case .material(let left) = lhs, case .material(let right) = rhs { return left == right }
        return lhs.fingerprint == rhs.fingerprint
    }

    public func hash(into hasher: inout Hasher) {
        // Equal keys may differ in representation, so only a constant is hashed.
        hasher.combine(0)
    }
}
