import Testing

@testable import Controller

/// `mapInRuns`: the runs transformed on every core come back joined in order, exactly `map`.
@Suite("A map in runs across threads")
struct MapInRunsTests {
    @Test(
        "runs of 3 over 0, 1, 3, 4, 10 and 1,000 elements give exactly map's result, in order",
        arguments: [0, 1, 3, 4, 10, 1_000])
    func sameAsMap(count: Int) {
        let items = Array(0..<count).map { $0 * 7 % 13 }
        #expect(items.mapInRuns(run: 3) { "\($0):\($0 * $0)" } == items.map { "\($0):\($0 * $0)" })
    }
}
