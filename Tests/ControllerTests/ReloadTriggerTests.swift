import Foundation
import MeshwardTestKit
import Synchronization
import Testing

@testable import Controller

/// The trigger that wakes the reconcile loop before its interval: SIGHUP, a changed spec, a
/// shutdown.
@Suite("Reload trigger")
struct ReloadTriggerTests {
    /// A clock whose sleeps wait for `advance(by:)`, and a stream that yields whenever a sleep
    /// starts or ends waiting.
    static func parkingClock() -> (ManualClock, AsyncStream<Void>) {
        let (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let clock = ManualClock(
            Date(timeIntervalSince1970: 1_800_000_000), sleeps: .wait,
            onChange: {
                continuation.yield()
            })
        return (clock, changes)
    }

    /// Returns once `clock` has `count` sleeps waiting.
    static func untilSleeping(_ count: Int, on clock: ManualClock, changes: AsyncStream<Void>) async {
        if clock.sleeping == count { return }
        for await _ in changes where clock.sleeping == count { return }
    }

    @Test("reasons fired while the loop is busy all reach its next wait, each once, in the order fired")
    func pendingReasonsAreKept() async {
        let trigger = ReloadTrigger()
        trigger.fire("spec changed")
        trigger.fire("SIGHUP")
        trigger.fire("spec changed")
        let clock = ManualClock()
        #expect(await trigger.wait(until: clock.now().addingTimeInterval(60), on: clock) == ["spec changed", "SIGHUP"])
        #expect(clock.sleepsStarted == 0, "the wait returned without sleeping")
    }

    @Test("a wait with nothing fired returns no reason once its deadline passes on the clock, and not before")
    func deadlineEndsTheWait() async {
        let trigger = ReloadTrigger()
        let (clock, changes) = Self.parkingClock()
        let waiting = Task { await trigger.wait(until: clock.now().addingTimeInterval(30), on: clock) }
        await Self.untilSleeping(1, on: clock, changes: changes)
        clock.advance(by: 29)
        #expect(clock.sleeping == 1, "the wait ended before its deadline")
        clock.advance(by: 1)
        #expect(await waiting.value == [])
    }

    @Test("a reason fired during a wait ends it at once with that reason, and its sleep with it")
    func fireWakesTheWait() async {
        let trigger = ReloadTrigger()
        let (clock, changes) = Self.parkingClock()
        let waiting = Task { await trigger.wait(until: clock.now().addingTimeInterval(30), on: clock) }
        await Self.untilSleeping(1, on: clock, changes: changes)
        trigger.fire("SIGHUP")
        #expect(await waiting.value == ["SIGHUP"])
        await Self.untilSleeping(0, on: clock, changes: changes)
    }

    @Test(
        "a reason fired just as the deadline passes is returned by that wait or the next one, never lost (200 runs, sampled by the scheduler)"
    )
    func reasonAtTheDeadlineIsNotLost() async {
        for _ in 0..<200 {
            let trigger = ReloadTrigger()
            let (clock, changes) = Self.parkingClock()
            let waiting = Task { await trigger.wait(until: clock.now().addingTimeInterval(10), on: clock) }
            await Self.untilSleeping(1, on: clock, changes: changes)
            async let advanced: Void = clock.advance(by: 10)
            async let fired: Void = trigger.fire("SIGHUP")
            _ = await (advanced, fired)
            let first = await waiting.value
            let second = await trigger.wait(until: clock.now(), on: clock)
            #expect(first + second == ["SIGHUP"], "first wait \(first), next \(second)")
        }
    }
}
