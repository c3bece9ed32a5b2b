import Testing

@testable import Reconciler

/// The nodes' position tables held in one array of slots (`PositionTables`): each table finds
/// exactly its own positions, an empty table finds nothing, and keys that share their low 32
/// bits (what a slot keeps) are told apart by the caller's check.
@Suite("Position tables in one array")
struct PositionTablesTests {
    /// Table `table`'s keys: distinct per table, and every fourth one shares its low 32 bits
    /// with the key before it.
    static func keys(table: Int, count: Int) -> [UInt64] {
        (0..<count).map { index in
            let base = UInt64(table) << 40 | UInt64(index / 4 * 4)
            return index % 4 == 3 ? base | 1 << 32 : base &+ UInt64(index % 4)
        }
    }

    @Test("every key of every table is found at its own position, in its own table only")
    func everyKeyFoundInItsOwnTable() {
        let sizes = [5, 0, 1, 300, 0, 64]
        var tables = PositionTables()
        for (table, size) in sizes.enumerated() {
            var built = PositionTable(capacity: size)
            for (position, key) in Self.keys(table: table, count: size).enumerated() {
                built.insert(key, position: position)
            }
            tables.append(built)
        }
        for (table, size) in sizes.enumerated() {
            let keys = Self.keys(table: table, count: size)
            for (position, key) in keys.enumerated() {
                let found = tables.first(key, in: table) { keys[$0] == key }
                #expect(found == position, "table \(table), key \(key)")
                for other in sizes.indices where other != table {
                    let otherKeys = Self.keys(table: other, count: sizes[other])
                    #expect(tables.first(key, in: other) { otherKeys[$0] == key } == nil)
                }
            }
        }
    }

    @Test("keys sharing their low 32 bits are told apart by the caller's check")
    func sharedLowBitsToldApartByTheCheck() {
        var built = PositionTable(capacity: 2)
        let low: UInt64 = 0x1234_5678
        built.insert(low, position: 0)
        built.insert(1 << 32 | low, position: 1)
        var tables = PositionTables()
        tables.append(built)
        let keys = [low, 1 << 32 | low]
        #expect(tables.first(keys[1], in: 0) { keys[$0] == keys[1] } == 1)
        #expect(tables.first(keys[0], in: 0) { keys[$0] == keys[0] } == 0)
        #expect(tables.first(low | 2 << 32, in: 0) { keys[$0] == low | 2 << 32 } == nil)
    }

    @Test("an empty table takes no slots and finds nothing")
    func emptyTableFindsNothing() {
        var tables = PositionTables()
        tables.append(PositionTable(capacity: 0))
        #expect(tables.first(0, in: 0) { _ in true } == nil)
        #expect(tables.first(42, in: 0) { _ in true } == nil)
    }
}
