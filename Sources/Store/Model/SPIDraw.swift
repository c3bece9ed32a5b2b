import MeshwardCore

/// How every Store draws a new SPI from its range: random candidates first (each reserved, or
/// refused by the database as issued before, in one insert), and for a destination whose range
/// is nearly full one walk of the whole range from a random point.
package struct SPIDraw {
    package let range: ClosedRange<UInt32>

    package init(range: ClosedRange<UInt32>) {
        self.range = range
    }

    /// How many random candidates a request gets before its range is walked.
    package static let randomTries = 64

    /// A random candidate in the range.
    package func random(using generator: inout some RandomNumberGenerator) -> UInt32 {
        UInt32.random(in: range, using: &generator)
    }

    /// Every SPI of the range once, from a random point and round to it, without those in
    /// `taken` (already issued on the destination) and `avoiding` (foreign ones seen there).
    package func walk(
        skipping taken: Set<UInt32>, avoiding: Set<SPI>, using generator: inout some RandomNumberGenerator
    ) -> some Sequence<UInt32> {
        let lower = range.lowerBound
        let size = UInt64(range.upperBound - lower) + 1
        let start = UInt64(random(using: &generator) - lower)
        return (0..<size).lazy.map { offset in lower + UInt32((start + offset) % size) }
            .filter { !taken.contains($0) && !avoiding.contains(SPI($0)) }
    }
}
