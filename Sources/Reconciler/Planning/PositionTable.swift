/// A compact open-addressing table from 64-bit keys to positions in an array, for looking up
/// a node's observed objects by identity without hashing them through `Hasher` on every probe.
///
/// Keys are the objects' `mixedBits`, which are already well mixed; distinct objects may share
/// a key, so the table is a multimap and the caller verifies the object at each position.
struct PositionTable {
    private var keys: [UInt64]
    private var positions: [Int32]
    private let mask: Int

    /// An empty slot holds position -1.
    init(capacity: Int) {
        var size = 8
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: 0, count: size)
        positions = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    mutating func insert(_ key: UInt64, position: Int) {
        var slot = Int(truncatingIfNeeded: key) & mask
        while positions[slot] >= 0 { slot = (slot + 1) & mask }
        keys[slot] = key
        positions[slot] = Int32(position)
    }

    /// The first position stored under `key` for which `matches` is true.
    func first(_ key: UInt64, where matches: (Int) -> Bool) -> Int? {
        var slot = Int(truncatingIfNeeded: key) & mask
        while true {
            let position = positions[slot]
            if position < 0 { return nil }
            if keys[slot] == key, matches(Int(position)) { return Int(position) }
            slot = (slot + 1) & mask
        }
    }
}
