import Foundation
import Store
import Testing

@testable import Controller
@testable import Reconciler

/// The lease keeper's transitions, without a Store or a clock: each answer of the Store is an
/// event, and the test reads the role it leaves and the actions it asks for.
@Suite("Lease keeper state machine")
struct LeaseKeeperStateMachineTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func lease(_ holder: String = "ctl-a", epoch: Int64 = 1, expiresIn seconds: TimeInterval = 15) -> Lease {
        Lease(holder: holder, acquiredAt: now, expiresAt: now.addingTimeInterval(seconds), epoch: epoch)
    }

    /// A machine for `ctl-a` with a 15 s TTL, after `events` from the keeper's turns.
    static func machine(after events: [LeaseKeeper.Event] = []) -> LeaseKeeper.StateMachine {
        var machine = LeaseKeeper.StateMachine(holder: "ctl-a", ttl: 15)
        for event in events { _ = machine.handle(event, from: .turn, at: now) }
        return machine
    }

    @Test(
        "a controller that takes the lease leads: it says so once, reports its epoch, and wakes whoever waits to lead")
    func takingTheLeaseLeads() {
        var machine = Self.machine()
        let actions = machine.handle(.held(Self.lease()), from: .turn, at: Self.now)
        #expect(machine.role == .leading(Self.lease()))
        #expect(actions.log == .leading(Self.lease(), previous: nil))
        #expect(actions.log?.message == "leading: holds the lease")
        #expect(actions.record == .leading(epoch: 1))
        #expect(actions.startedLeading)
        #expect(!actions.stoppedLeading)
        #expect(actions.nextTurn == 5, "a leader renews every third of its TTL")
    }

    @Test("a renewal under the same epoch logs nothing and wakes nobody, but is reported; a new epoch is a new lead")
    func renewalsAreQuiet() {
        var machine = Self.machine(after: [.held(Self.lease())])
        let renewed = machine.handle(.held(Self.lease(expiresIn: 20)), from: .call, at: Self.now)
        #expect(renewed.log == nil)
        #expect(renewed.record == .leading(epoch: 1))
        #expect(!renewed.startedLeading)
        #expect(machine.role.lease?.expiresAt == Self.now.addingTimeInterval(20))

        let retaken = machine.handle(.held(Self.lease(epoch: 2)), from: .turn, at: Self.now)
        #expect(retaken.log == .leading(Self.lease(epoch: 2), previous: nil))
        #expect(!retaken.startedLeading, "it led already")
    }

    @Test("a standby says who holds the lease once per holder, and only on the keeper's own turns")
    func standingByIsAnnouncedOncePerHolder() {
        var machine = Self.machine()
        let expires = Self.now.addingTimeInterval(12)
        let first = machine.handle(.heldElsewhere(holder: "ctl-b", expires: expires), from: .turn, at: Self.now)
        #expect(first.log == .standingBy(holder: "ctl-b", expires: expires))
        #expect(first.log?.message == "standing by: another controller holds the lease")
        #expect(first.record == .standby(holder: "ctl-b"))
        #expect(machine.role == .standby(holder: "ctl-b", expires: expires))

        let again = machine.handle(.heldElsewhere(holder: "ctl-b", expires: expires), from: .turn, at: Self.now)
        #expect(again.log == nil, "the same holder is not announced twice")
        #expect(again.record == .standby(holder: "ctl-b"))

        let other = machine.handle(.heldElsewhere(holder: "ctl-c", expires: expires), from: .turn, at: Self.now)
        #expect(other.log == .standingBy(holder: "ctl-c", expires: expires))

        var oneShot = Self.machine()
        let refused = oneShot.handle(.heldElsewhere(holder: "ctl-b", expires: expires), from: .call, at: Self.now)
        #expect(refused.log == nil, "a one-shot run reports or logs its own wait")
        #expect(refused.record == .standby(holder: "ctl-b"))
    }

    @Test(
        "a standby's next turn is at the holder's lapse plus the margin when that is sooner than a third of the TTL",
        arguments: [(12.0, 5.0), (3.0, 3.25), (0.0, 0.25), (-1.0, 5.0)] as [(TimeInterval, TimeInterval)])
    func standbyWakesAtTheLapse(expiresIn: TimeInterval, nextTurn: TimeInterval) {
        var machine = Self.machine()
        let actions = machine.handle(
            .heldElsewhere(holder: "ctl-b", expires: Self.now.addingTimeInterval(expiresIn)), from: .turn, at: Self.now)
        #expect(actions.nextTurn == nextTurn)
    }

    @Test("taking the lease after standing by names the holder this controller waited for")
    func leadingNamesThePreviousHolder() {
        var machine = Self.machine(after: [.heldElsewhere(holder: "ctl-b", expires: Self.now)])
        let actions = machine.handle(.held(Self.lease(epoch: 2)), from: .turn, at: Self.now)
        #expect(actions.log == .leading(Self.lease(epoch: 2), previous: "ctl-b"))
        #expect(actions.log?.metadata["lease.previous"] == "ctl-b")
        #expect(actions.startedLeading)
    }

    @Test(
        "a lease lost is logged for the controller on the keeper's turn, for the run on a one-shot renewal, and not at all from a pass's fence, which throws",
        arguments: [
            (LeaseKeeper.Source.turn, "lost the lease; this controller writes no kernel until it holds it again"),
            (.renewal, "lost the lease; this run writes no kernel from now on"), (.call, nil),
        ] as [(LeaseKeeper.Source, String?)])
    func losingTheLease(source: LeaseKeeper.Source, line: String?) {
        var machine = Self.machine(after: [.held(Self.lease())])
        let actions = machine.handle(.lost(current: Self.lease("ctl-b", epoch: 2)), from: source, at: Self.now)
        #expect(actions.log.map { "\($0.message)" } == line)
        #expect(actions.log?.metadata["lease.current"] == (line == nil ? nil : "ctl-b"))
        #expect(actions.record == .standby(holder: "ctl-b"))
        #expect(actions.stoppedLeading)
        #expect(machine.role == .lost(to: "ctl-b"))
        #expect(machine.role.lease == nil)
    }

    @Test("a Store that does not answer leaves the role as it was: a leader still leads, and the fence decides")
    func storeFailureKeepsTheRole() {
        var machine = Self.machine(after: [.held(Self.lease())])
        let turn = machine.handle(.storeFailed(error: "cannot connect"), from: .turn, at: Self.now)
        #expect(turn.log == .couldNotKeep(holder: "ctl-a", error: "cannot connect"))
        #expect(turn.record == nil)
        #expect(!turn.stoppedLeading)
        #expect(machine.role == .leading(Self.lease()))
        let renewal = machine.handle(.storeFailed(error: "cannot connect"), from: .renewal, at: Self.now)
        #expect(renewal.log?.message == "could not renew the lease; trying again at the next turn")
        #expect(machine.handle(.storeFailed(error: "cannot connect"), from: .call, at: Self.now).log == nil)
    }

    @Test(
        "a released lease leaves the controller idle, not leading; a release the Store refused says it expires by itself"
    )
    func releasing() {
        var machine = Self.machine(after: [.held(Self.lease())])
        let released = machine.handle(.released(error: nil), from: .call, at: Self.now)
        #expect(machine.role == .idle)
        #expect(released.stoppedLeading)
        #expect(released.log == nil)
        let refused = machine.handle(.released(error: "read-only"), from: .call, at: Self.now)
        #expect(refused.log?.message == "could not release the lease; it expires by itself")
        #expect(!refused.stoppedLeading)
    }

    @Test("a controller that lost its lease leads again when it takes a new one, and says so")
    func leadsAgainAfterALoss() {
        var machine = Self.machine(after: [.held(Self.lease()), .lost(current: nil)])
        #expect(machine.role == .lost(to: nil))
        let actions = machine.handle(.held(Self.lease(epoch: 3)), from: .turn, at: Self.now)
        #expect(actions.startedLeading)
        #expect(actions.log == .leading(Self.lease(epoch: 3), previous: nil))
    }
}
