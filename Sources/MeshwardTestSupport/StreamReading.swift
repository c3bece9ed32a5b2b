/// Reading an async stream in a test without waiting a fixed time: elements already there are
/// returned at once, and `limit` only bounds how long a test that would otherwise hang waits
/// before failing with `StreamReadingTimeout`.
extension AsyncSequence where Self: Sendable, Element: Sendable {
    /// The next `count` elements, in order. Throws the sequence's own error if it ends with one
    /// first, `StreamReadingTimeout` if they have not all come within `limit`.
    public func first(_ count: Int, within limit: Duration = .seconds(10)) async throws -> [Element] {
        try await first(count, within: limit) { _ in false }
    }

    func first(
        _ count: Int, within limit: Duration, stoppingAt isLast: @escaping @Sendable (Element) -> Bool
    ) async throws -> [Element] {
        try await Self.race(limit: limit, wanted: count == Int.max ? nil : count) {
            var elements: [Element] = []
            guard count > 0 else { return elements }
            for try await element in self {
                elements.append(element)
                if elements.count == count || isLast(element) { break }
            }
            return elements
        }
    }

    /// Every element until the sequence ends, and the error it ended with (nil for a normal
    /// end). Throws `StreamReadingTimeout` if it has not ended within `limit`.
    public func untilEnd(
        within limit: Duration = .seconds(10)
    ) async throws -> (
        elements: [Element], ending: (any Error)?
    ) {
        try await Self.race(limit: limit, wanted: nil) {
            var elements: [Element] = []
            do {
                for try await element in self { elements.append(element) }
                return (elements, nil)
            } catch {
                return (elements, error)
            }
        }
    }

    private static func race<T: Sendable>(
        limit: Duration, wanted: Int?, _ read: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await read() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw StreamReadingTimeout(limit: limit, wanted: wanted)
            }
            return result
        }
    }
}

/// A stream did not give what a test waited for within its limit.
public struct StreamReadingTimeout: Error, CustomStringConvertible {
    public let limit: Duration
    /// How many elements the test waited for; nil when it waited for the end.
    public let wanted: Int?

    public init(limit: Duration, wanted: Int?) {
        self.limit = limit
        self.wanted = wanted
    }

    public var description: String {
        if let wanted {
            "\(wanted) elements did not all come within \(limit)"
        } else {
            "what the test waited for did not come within \(limit)"
        }
    }
}

extension AsyncSequence where Self: Sendable, Element: Sendable {
    /// Every element up to and including the first for which `isLast` holds. Throws the
    /// sequence's own error if it ends first, `StreamReadingTimeout` after `limit`.
    public func prefix(
        through isLast: @escaping @Sendable (Element) -> Bool, within limit: Duration = .seconds(10)
    ) async throws -> [Element] {
        try await first(Int.max, within: limit, stoppingAt: isLast)
    }
}
