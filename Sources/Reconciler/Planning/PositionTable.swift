/// A compact open-addressing table from 64-bit keys to positions in an array, for looking up
/// a node's observed objects by identity without hashing them through `Hasher` on every probe.
///
/// Keys are the objects' `mixedBits`, which are already well mixed; distinct objects may share
/// a key, so the table is a multimap and the caller verifies the object at each position.
struct PositionTable {
    /// One slot: the key's low 32 bits and the position stored under it; an empty slot holds
    /// position -1. Half a key filters as well as a whole one (the caller verifies every
    /// match) and keeps a slot at 8 bytes.
    struct Slot {
        var key: UInt32
        var position: Int32

        init(key: UInt64, position: Int32) {
            self.key = UInt32(truncatingIfNeeded: key)
            self.position = position
        }
    }

    fileprivate private(set) var slots: [Slot]
    fileprivate let mask: Int
    /// How many positions the table holds.
    private(set) var count = 0

    init(capacity: Int) {
        var size = 8
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: Slot(key: 0, position: -1), count: size)
        mask = size - 1
    }

    mutating func insert(_ key: UInt64, position: Int) {
        var slot = Int(truncatingIfNeeded: key) & mask
        while slots[slot].position >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Slot(key: key, position: Int32(position))
        count += 1
    }

    /// The first position stored under `key` for which `matches` is true.
    func first(_ key: UInt64, where matches: (Int) -> Bool) -> Int? {
        PositionTables.first(key, in: slots, start: 0, mask: mask, where: matches)
    }
}

/// Many nodes' position tables in one array of plain slots.
///
/// A lookup reads values out of arrays that the owner holds directly, so it retains nothing:
/// with an array of `PositionTable`s every lookup retained the node's table storage, and
/// threads planning at once contended on those shared reference counts.
struct PositionTables {
    private var slots: [PositionTable.Slot] = []
    /// Per table: where its slots start (-1 for an empty table, which has none), and its mask.
    private var starts: [Int] = []
    private var masks: [Int] = []

    /// Adds `table` as the next one. An empty table takes no slots, so appending one to a copy
    /// of these tables never copies the slots.
    mutating func append(_ table: PositionTable) {
        guard table.count > 0 else {
            starts.append(-1)
            masks.append(0)
            return
        }
        starts.append(slots.count)
        masks.append(table.mask)
        slots.append(contentsOf: table.slots)
    }

    /// The first position stored under `key` in table number `table` for which `matches` is
    /// true.
    func first(_ key: UInt64, in table: Int, where matches: (Int) -> Bool) -> Int? {
        let start = starts[table]
        guard start >= 0 else { return nil }
        return Self.first(key, in: slots, start: start, mask: masks[table], where: matches)
    }

    fileprivate static func first(
        _ key: UInt64, in slots: [PositionTable.Slot], start: Int, mask: Int, where matches: (Int) -> Bool
    ) -> Int? {
        var slot = Int(truncatingIfNeeded: key) & mask
        while true {
            let entry = slots[start + slot]
            if entry.position < 0 { return nil }
            if entry.key == UInt32(truncatingIfNeeded: key), matches(Int(entry.position)) {
                return Int(entry.position)
            }
            slot = (slot + 1) & mask
        }
    }
}
