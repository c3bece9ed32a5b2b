import PostgresNIO

/// One bound value of a multi-row statement, with the type its placeholder is cast to (a
/// placeholder in a `VALUES` list has no type PostgreSQL could infer, and NULLs need one).
enum SQLValue {
    case text(String?)
    case integer(Int64?)
    case real(Double?)
    case bytes([UInt8]?)

    var cast: String {
        switch self {
        case .text: "text"
        case .integer: "int8"
        case .real: "float8"
        case .bytes: "bytea"
        }
    }

    func bind(into binds: inout PostgresBindings) {
        switch self {
        case .text(let value): binds.append(value)
        case .integer(let value): binds.append(value)
        case .real(let value): binds.append(value)
        case .bytes(let value): binds.append(value.map { ByteBuffer(bytes: $0) })
        }
    }
}

/// Multi-row statements: many rows in one statement, so that a pass that writes many rows pays
/// one round trip per chunk of them, not one per row.
enum SQLRows {
    /// PostgreSQL binds at most 65,535 parameters per statement; chunks stay below that.
    static let maximumParameters = 60_000

    /// The rows in chunks small enough for one statement each.
    static func chunks(_ rows: [[SQLValue]]) -> [ArraySlice<[SQLValue]>] {
        guard let width = rows.first?.count, width > 0 else { return [] }
        let size = max(1, maximumParameters / width)
        return stride(from: 0, to: rows.count, by: size).map { rows[$0..<min($0 + size, rows.count)] }
    }

    /// `prefix VALUES (...), (...) suffix` with every value bound, placeholders numbered from
    /// `after + 1` (so that the statement may bind its own values first, in `binds`).
    static func query(
        _ prefix: String, _ rows: ArraySlice<[SQLValue]>, _ suffix: String = "",
        binds start: PostgresBindings = PostgresBindings(), after: Int = 0
    ) -> PostgresQuery {
        var binds = start
        var sql = prefix + " VALUES "
        var index = after
        var firstRow = true
        for row in rows {
            sql += firstRow ? "(" : ", ("
            firstRow = false
            for (column, value) in row.enumerated() {
                index += 1
                sql += (column == 0 ? "$" : ", $") + "\(index)::\(value.cast)"
                value.bind(into: &binds)
            }
            sql += ")"
        }
        return PostgresQuery(unsafeSQL: sql + " " + suffix, binds: binds)
    }
}
