import Testing

@testable import Controller

/// `ExitWithoutFreeing`: values are freed as usual until a command turns keeping on, and held
/// from then on.
@Suite("Values kept until the process exits")
struct ExitWithoutFreeingTests {
    final class Tracked: Sendable {}

    /// Hands a new object to `keeper` and lets go of it; whether it still lives afterwards.
    static func outlivesItsHolder(in keeper: ExitWithoutFreeing) -> Bool {
        weak var watched: Tracked?
        do {
            let value = Tracked()
            watched = value
            keeper.keep(value)
        }
        return watched != nil
    }

    @Test("before keepUntilExit, a kept value is freed when its last holder lets go")
    func freedWhenNotKeeping() {
        #expect(!Self.outlivesItsHolder(in: ExitWithoutFreeing()))
    }

    @Test("after keepUntilExit, a kept value outlives its last holder")
    func heldWhenKeeping() {
        let keeper = ExitWithoutFreeing()
        keeper.keepUntilExit()
        #expect(Self.outlivesItsHolder(in: keeper))
    }
}
