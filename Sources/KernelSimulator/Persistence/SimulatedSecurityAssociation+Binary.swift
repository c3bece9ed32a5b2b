import Kernel
import MeshwardCore

/// An SA in a node's body: its configuration, the key's fingerprint, its counters, and the
/// sequence state of both directions (the last sequence sent and the replay window).
extension SimulatedSecurityAssociation {
    func encode(into writer: inout BinaryWriter) {
        writer.write(source)
        writer.write(destination)
        writer.write(spi.rawValue)
        writer.write(reqid.rawValue)
        writer.write(cipher.binaryCode)
        writer.write(keyFingerprint)
        writer.write(replayWindow)
        writer.write(extendedSequenceNumbers)
        writer.write(counters.bytes)
        writer.write(counters.packets)
        writer.write(counters.addTime)
        writer.write(counters.useTime)
        writer.write(insertionOrder)
        writer.write(lastSentSequence)
        writer.write(replay.size)
        writer.write(replay.highest)
        writer.writeCount(replay.seen.count)
        for word in replay.seen { writer.write(word) }
    }

    init(reading reader: inout BinaryReader) throws(BinaryDecodingError) {
        source = try reader.readAddress()
        destination = try reader.readAddress()
        spi = SPI(try reader.read(UInt32.self))
        reqid = Reqid(try reader.read(UInt32.self))
        let cipherStart = reader.offset
        let cipherCode = try reader.read(UInt8.self)
        guard let cipher = Cipher(binaryCode: cipherCode) else {
            throw .invalid("cipher code \(cipherCode)", offset: cipherStart)
        }
        self.cipher = cipher
        keyFingerprint = try reader.readString()
        replayWindow = try reader.read(UInt32.self)
        extendedSequenceNumbers = try reader.readBool()
        counters = SACounters(
            bytes: try reader.read(UInt64.self), packets: try reader.read(UInt64.self),
            addTime: try reader.read(UInt64.self), useTime: try reader.read(UInt64.self))
        insertionOrder = try reader.read(UInt64.self)
        lastSentSequence = try reader.read(UInt64.self)
        let replayStart = reader.offset
        replay = ReplayWindow(size: try reader.read(UInt32.self))
        replay.highest = try reader.read(UInt64.self)
        let words = try reader.readCount(minimumElementSize: 8)
        // The window's bitmap is either not allocated yet or exactly as long as its size needs:
        // any other length would send `admits` past its end.
        guard words == 0 || words == (Int(replay.size) + 63) / 64,
            replay.size <= ReplayWindow.maximumSize
        else {
            throw .invalid("a replay window of \(replay.size) packets with \(words) words", offset: replayStart)
        }
        replay.seen.reserveCapacity(words)
        for _ in 0..<words { replay.seen.append(try reader.read(UInt64.self)) }
    }
}

extension Cipher {
    /// The cipher's code in a node's body; fixed forever, whatever the order of the cases.
    var binaryCode: UInt8 {
        switch self {
        case .aesGCM128: 1
        case .aesGCM256: 2
        case .chacha20Poly1305: 3
        case .aesCBCHMACSHA256: 4
        }
    }

    init?(binaryCode: UInt8) {
        guard let cipher = Self.allCases.first(where: { $0.binaryCode == binaryCode }) else { return nil }
        self = cipher
    }
}
