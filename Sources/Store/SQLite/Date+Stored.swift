import Foundation

extension Date {
    /// The value stored in a timestamp column: seconds since 2001-01-01 UTC, exact for any `Date`.
    package var storedValue: Double { timeIntervalSinceReferenceDate }

    /// The date a timestamp column holds.
    package init(storedValue: Double) { self.init(timeIntervalSinceReferenceDate: storedValue) }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    package var seconds: Double {
        let parts = components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}
