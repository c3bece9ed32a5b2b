import DesiredState
import MeshwardCore
import Testing

@testable import Controller
@testable import ReconcilerTestSupport

/// A plan's channel changes are listed in channel order, whether the spec's channels are walked
/// (many change) or the changes are sorted (few change).
@Suite("Plan channel order")
struct PlanChannelOrderTests {
    @Test("walking the spec's channels and sorting the changes give the same list, unnamed channels merged in order")
    func walkingAndSortingAgree() throws {
        var spec = FleetSpec(nodes: (1...5).map { FleetSpec.node($0, ipv6: $0 % 2 == 0) }, flows: [])
        for from in 1...5 {
            for to in 1...5 where from != to {
                spec.flows.append(.init(name: "f\(from)-\(to)", from: "n\(from)", to: "n\(to)", ports: [], cipher: nil))
            }
        }
        let intent = try spec.compile()
        #expect(intent.channels.count > 20)
        var changes: [ChannelID: PlanChannelChange] = [:]
        for (position, channel) in intent.channels.enumerated() where position % 3 != 1 {
            changes[channel.id] = PlanChannelChange(
                channel: channel.id.description, action: "create", reason: nil, differences: [])
        }
        // Channels the spec does not name, sorting before, between and after its own.
        for (from, to) in [("a", "n1"), ("n1", "n0"), ("n3", "n9"), ("n9", "n1"), ("zz", "n2")] {
            let id = ChannelID(from: from, to: to, family: .ipv4)
            changes[id] = PlanChannelChange(
                channel: id.description, action: "remove", reason: "not in the spec", differences: [])
        }
        let walked = PlanChannelChange.inChannelOrder(changes, intent: intent, walking: true)
        let sorted = PlanChannelChange.inChannelOrder(changes, intent: intent, walking: false)
        #expect(walked.count == changes.count)
        #expect(walked == sorted)
        #expect(walked.map(\.from) == sorted.map(\.from))
        #expect(walked.map(\.to) == sorted.map(\.to))
        #expect(walked.map(\.flows) == sorted.map(\.flows))
        let ids = walked.map { ChannelID($0.channel)! }
        #expect(ids == ids.sorted())
        #expect(walked.filter { $0.flows == nil }.count == 5)
        #expect(walked.first?.channel == "a->n1/ipv4")
        #expect(walked.last?.channel == "zz->n2/ipv4")
    }
}
