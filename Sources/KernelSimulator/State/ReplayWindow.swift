/// An SA's inbound anti-replay window: the highest sequence number seen and a bitmap of the
/// `size` numbers at and below it.
///
/// The bitmap is allocated on the first packet, so an unused SA costs nothing in memory or in
/// the persisted file. A size of 0 turns replay protection off, as in the kernel.
struct ReplayWindow: Sendable, Hashable, Codable {
    /// The window in packets (capped at `maximumSize`).
    var size: UInt32
    /// The highest sequence number accepted; 0 before the first packet.
    var highest: UInt64 = 0
    /// Bit `k` (word `k / 64`, bit `k % 64`) is set when `highest - k` was accepted.
    var seen: [UInt64] = []

    /// The largest window modelled; the kernel's ESN windows may be larger, but tests never
    /// need more.
    static let maximumSize: UInt32 = 4096

    init(size: UInt32) {
        self.size = min(size, Self.maximumSize)
    }

    /// True when `sequence` is fresh: above the highest seen, or inside the window and not yet
    /// seen. False for a replay: a number already seen, below the window, or 0.
    func admits(_ sequence: UInt64) -> Bool {
        guard size > 0 else { return true }
        guard sequence > 0 else { return false }
        if sequence > highest { return true }
        let offset = highest - sequence
        guard offset < UInt64(size) else { return false }
        guard !seen.isEmpty else { return true }
        return seen[Int(offset / 64)] & (UInt64(1) << (offset % 64)) == 0
    }

    /// Records `sequence` as seen; call only after `admits(sequence)` (the kernel advances the
    /// window once the packet has been authenticated).
    mutating func record(_ sequence: UInt64) {
        guard size > 0, sequence > 0 else { return }
        if seen.isEmpty { seen = [UInt64](repeating: 0, count: (Int(size) + 63) / 64) }
        if sequence > highest {
            shift(by: sequence - highest)
            highest = sequence
            seen[0] |= 1
            return
        }
        let offset = highest - sequence
        guard offset < UInt64(size) else { return }
        seen[Int(offset / 64)] |= UInt64(1) << (offset % 64)
    }

    /// Moves every bit `distance` places up (older), dropping those that leave the bitmap.
    private mutating func shift(by distance: UInt64) {
        guard distance < UInt64(seen.count * 64) else {
            for index in seen.indices { seen[index] = 0 }
            return
        }
        let wordShift = Int(distance / 64)
        let bitShift = distance % 64
        for index in stride(from: seen.count - 1, through: 0, by: -1) {
            let source = index - wordShift
            var value: UInt64 = source >= 0 ? seen[source] << bitShift : 0
            if bitShift > 0, source - 1 >= 0 {
                value |= seen[source - 1] >> (64 - bitShift)
            }
            seen[index] = value
        }
    }
}
