/// Reads the plaintext opening of one direction of a TLS connection (RFC 8446 §4.1): the
/// ClientHello a client sends, or the ServerHello (and HelloRetryRequest) a server answers
/// with, and an alert sent instead. Fed the bytes as they cross the socket, in any pieces; it
/// reassembles records and handshake messages, reports what it read, and stops reading once the
/// hello is seen or the stream turns encrypted, so a connection costs it a few kilobytes once.
///
/// It decides nothing: the TLS library does the handshake; this only reads what was said on the
/// wire, so that what the controller shows and the agent counts is what the connection carried.
struct TLSHelloReader: Sendable {
    /// What one direction said.
    enum Event: Sendable, Equatable {
        case clientHello(TLSClientOffer)
        /// A HelloRetryRequest naming the group the server asks for.
        case helloRetry(group: UInt16?)
        case serverHello(TLSNegotiation)
        /// An alert before any hello was complete (its description code: 40 handshake_failure,
        /// 70 protocol_version, ...).
        case alert(description: UInt8)
        /// The first bytes were not a TLS record.
        case notTLS
    }

    /// At most this many bytes are held while a hello is incomplete (a ClientHello with an
    /// ML-KEM key share is about 1.3 KB); past it the reader gives up.
    static let limit = 64 * 1024

    private var pending: [UInt8] = []
    private var handshake: [UInt8] = []
    /// Whether the reader has stopped reading (hello seen, stream encrypted, or gave up).
    private(set) var finished = false

    /// `SHA-256("HelloRetryRequest")`: the ServerHello random that marks a HelloRetryRequest.
    private static let helloRetryRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]

    /// Reads `bytes`, the next bytes of the direction, and returns what they completed.
    mutating func read(_ bytes: some Collection<UInt8>) -> [Event] {
        guard !finished else { return [] }
        pending.append(contentsOf: bytes)
        var events: [Event] = []
        while !finished, pending.count >= 5 {
            let type = pending[0]
            guard [20, 21, 22, 23].contains(type), pending[1] == 3 else {
                finished = true
                events.append(.notTLS)
                break
            }
            let length = Int(pending[3]) << 8 | Int(pending[4])
            guard pending.count >= 5 + length else { break }
            let fragment = Array(pending[5..<(5 + length)])
            pending.removeFirst(5 + length)
            switch type {
            case 22:
                handshake.append(contentsOf: fragment)
                events += readHandshakeMessages()
            case 21:
                finished = true
                if fragment.count >= 2 { events.append(.alert(description: fragment[1])) }
            case 20:
                continue  // ChangeCipherSpec (TLS 1.3's middlebox compatibility): nothing to read.
            default:
                finished = true  // application data: the handshake is encrypted from here on.
            }
        }
        if pending.count + handshake.count > Self.limit { finished = true }
        return events
    }

    private mutating func readHandshakeMessages() -> [Event] {
        var events: [Event] = []
        while !finished, handshake.count >= 4 {
            let type = handshake[0]
            let length = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
            guard handshake.count >= 4 + length else { break }
            let body = Array(handshake[4..<(4 + length)])
            handshake.removeFirst(4 + length)
            switch type {
            case 1:
                finished = true
                if let offer = Self.clientOffer(body) { events.append(.clientHello(offer)) }
            case 2:
                guard let hello = Self.serverHello(body) else {
                    finished = true
                    break
                }
                events.append(hello)
                if case .serverHello = hello { finished = true }
            default:
                finished = true
            }
        }
        return events
    }

    /// The versions and groups of a ClientHello body; nil when it is malformed.
    static func clientOffer(_ body: [UInt8]) -> TLSClientOffer? {
        var cursor = Cursor(body)
        guard let legacy = cursor.uint16(),
            cursor.skip(32),
            cursor.skipVector(lengthBytes: 1),
            cursor.skipVector(lengthBytes: 2),
            cursor.skipVector(lengthBytes: 1)
        else { return nil }
        var versions: [UInt16]?
        var groups: [UInt16] = []
        guard let extensions = Self.extensions(&cursor) else { return nil }
        for (type, data) in extensions {
            var inner = Cursor(data)
            switch type {
            case 43:  // supported_versions: <2..254> of versions
                guard let listed = inner.vector(lengthBytes: 1) else { return nil }
                versions = Self.codes(listed)
            case 10:  // supported_groups: <2..2^16-1> of groups
                guard let listed = inner.vector(lengthBytes: 2) else { return nil }
                groups = Self.codes(listed)
            default:
                break
            }
        }
        // GREASE values (RFC 8701: 0x?A?A) are noise a client adds on purpose.
        let grease = { (code: UInt16) in code & 0x0F0F == 0x0A0A && code >> 8 == code & 0xFF }
        return TLSClientOffer(
            versions: (versions ?? [legacy]).filter { !grease($0) }, groups: groups.filter { !grease($0) })
    }

    /// A ServerHello body as `.serverHello`, or `.helloRetry` for a HelloRetryRequest; nil when
    /// it is malformed.
    static func serverHello(_ body: [UInt8]) -> Event? {
        var cursor = Cursor(body)
        guard let legacy = cursor.uint16(), let random = cursor.bytes(32),
            cursor.skipVector(lengthBytes: 1),
            cursor.skip(2),
            cursor.skip(1)
        else { return nil }
        var version = legacy
        var group: UInt16?
        guard let extensions = Self.extensions(&cursor) else { return nil }
        for (type, data) in extensions {
            var inner = Cursor(data)
            switch type {
            case 43:  // supported_versions: the selected version
                guard let selected = inner.uint16() else { return nil }
                version = selected
            case 51:  // key_share: the group (then the share, except in a HelloRetryRequest)
                guard let named = inner.uint16() else { return nil }
                group = named
            default:
                break
            }
        }
        if random == helloRetryRandom { return .helloRetry(group: group) }
        return .serverHello(TLSNegotiation(version: version, group: group))
    }

    /// The extensions at `cursor` (type, data), in order; none when the hello ends before them
    /// (TLS 1.2 allows that); nil when they are malformed.
    private static func extensions(_ cursor: inout Cursor) -> [(UInt16, [UInt8])]? {
        guard !cursor.atEnd else { return [] }
        guard let block = cursor.vector(lengthBytes: 2) else { return nil }
        var list = Cursor(block)
        var extensions: [(UInt16, [UInt8])] = []
        while !list.atEnd {
            guard let type = list.uint16(), let data = list.vector(lengthBytes: 2) else { return nil }
            extensions.append((type, data))
        }
        return extensions
    }

    private static func codes(_ bytes: [UInt8]) -> [UInt16] {
        stride(from: 0, to: bytes.count - 1, by: 2).map { UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]) }
    }

    /// Big-endian reads over a byte array that fail (nil, false) instead of running past its end.
    private struct Cursor {
        private let bytes: [UInt8]
        private var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { index >= bytes.count }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, index + count <= bytes.count else { return nil }
            defer { index += count }
            return Array(bytes[index..<(index + count)])
        }

        mutating func skip(_ count: Int) -> Bool { bytes(count) != nil }

        mutating func uint16() -> UInt16? {
            bytes(2).map { UInt16($0[0]) << 8 | UInt16($0[1]) }
        }

        mutating func vector(lengthBytes: Int) -> [UInt8]? {
            guard let prefix = bytes(lengthBytes) else { return nil }
            return bytes(prefix.reduce(0) { $0 << 8 | Int($1) })
        }

        mutating func skipVector(lengthBytes: Int) -> Bool { vector(lengthBytes: lengthBytes) != nil }
    }
}
