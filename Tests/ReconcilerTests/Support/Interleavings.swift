import MeshwardTestSupport

/// The orders in which several ordered lists can interleave (each list keeps its own order):
/// all of them when there are at most `limit`, else `samples` random ones.
enum Interleavings {
    /// Each order is a sequence of list indices: `[0, 1, 0]` takes list 0's first element,
    /// then list 1's first, then list 0's second.
    static func orders(of counts: [Int], limit: Int, samples: Int, random: inout SeededRandom) -> [[Int]] {
        if count(counts, cap: limit + 1) <= limit {
            var result: [[Int]] = []
            var remaining = counts
            var prefix: [Int] = []
            enumerate(&remaining, &prefix, &result)
            return result
        }
        return (0..<samples).map { _ in
            var remaining = counts
            var order: [Int] = []
            let total = counts.reduce(0, +)
            for _ in 0..<total {
                let left = remaining.reduce(0, +)
                var pick = Int.random(in: 0..<left, using: &random)
                for (list, count) in remaining.enumerated() {
                    if pick < count {
                        order.append(list)
                        remaining[list] -= 1
                        break
                    }
                    pick -= count
                }
            }
            return order
        }
    }

    /// The multinomial coefficient, stopping at `cap`.
    static func count(_ counts: [Int], cap: Int) -> Int {
        var total = 0
        var result = 1
        for count in counts {
            for k in 0..<count {
                total += 1
                result = result * total / (k + 1)
                if result >= cap { return cap }
            }
        }
        return result
    }

    private static func enumerate(_ remaining: inout [Int], _ prefix: inout [Int], _ result: inout [[Int]]) {
        if remaining.allSatisfy({ $0 == 0 }) {
            result.append(prefix)
            return
        }
        for list in remaining.indices where remaining[list] > 0 {
            remaining[list] -= 1
            prefix.append(list)
            enumerate(&remaining, &prefix, &result)
            prefix.removeLast()
            remaining[list] += 1
        }
    }
}
