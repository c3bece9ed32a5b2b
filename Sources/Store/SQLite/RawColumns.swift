import Foundation
import GRDB
import GRDBSQLite
import MeshwardCore

/// The columns of the row a statement's cursor stands on, read in place through SQLite's own
/// accessors: a text or blob column is a view of SQLite's buffer, valid until the cursor moves.
/// For bulk loads, where making a `String` or `Data` of every column costs more than the query.
struct RawColumns {
    private let statement: SQLiteStatement

    init(_ statement: Statement) { self.statement = statement.sqliteStatement }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    func optionalDouble(_ column: Int32) -> Double? { isNull(column) ? nil : double(column) }

    func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    /// The column's bytes (a text's UTF-8, without terminator); empty for NULL.
    func bytes(_ column: Int32) -> UnsafeRawBufferPointer {
        // The pointer first, then the count, as SQLite asks.
        guard let start = sqlite3_column_blob(statement, column) else {
            return UnsafeRawBufferPointer(start: nil, count: 0)
        }
        return UnsafeRawBufferPointer(start: start, count: Int(sqlite3_column_bytes(statement, column)))
    }

    /// The column as text, for messages.
    func text(_ column: Int32) -> String { String(decoding: bytes(column), as: UTF8.self) }
}

/// The stored spellings of an enumeration's cases, matched against a column's bytes in place.
struct TextValues<Value: RawRepresentable<String> & Sendable>: Sendable {
    private let spellings: [(bytes: [UInt8], value: Value)]

    init(_ values: some Sequence<Value>) { spellings = values.map { (Array($0.rawValue.utf8), $0) } }

    /// Whether two byte runs are equal.
    static func same(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        guard left.count == right.count else { return false }
        guard let a = left.baseAddress, let b = right.baseAddress else { return left.count == 0 }
        return memcmp(a, b, left.count) == 0
    }

    /// The case spelled `bytes`, or nil.
    func value(_ bytes: UnsafeRawBufferPointer) -> Value? {
        for spelling in spellings where spelling.bytes.count == bytes.count {
            if spelling.bytes.withUnsafeBytes({ Self.same($0, bytes) }) { return spelling.value }
        }
        return nil
    }
}

/// The spellings the Store's columns use.
enum StoredSpellings {
    static let families = TextValues(AddressFamily.allCases)
    static let steps = TextValues(ChannelStep.allCases)
    static let ciphers = TextValues(Cipher.allCases)
    static let generationStates = TextValues(GenerationState.allCases)
}

/// Node names read in place, one `String` per distinct name. Each slot (a column) remembers its
/// last name: consecutive rows mostly repeat it, and then nothing is hashed.
struct NameInterner {
    private var byHash: [Int: [String]] = [:]
    private var last: [String?] = [nil, nil]

    mutating func intern(_ bytes: UnsafeRawBufferPointer, slot: Int) -> String {
        if let name = last[slot], Self.spells(name, bytes) { return name }
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        let hash = hasher.finalize()
        if let name = byHash[hash]?.first(where: { Self.spells($0, bytes) }) {
            last[slot] = name
            return name
        }
        let name = String(decoding: bytes, as: UTF8.self)
        byHash[hash, default: []].append(name)
        last[slot] = name
        return name
    }

    private static func spells(_ name: String, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var name = name
        return name.withUTF8 { TextValues<AddressFamily>.same(UnsafeRawBufferPointer($0), bytes) }
    }
}
