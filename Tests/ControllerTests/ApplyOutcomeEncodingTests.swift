import Foundation
import Testing

@testable import Controller
@testable import Reconciler

/// `ApplyDocument.outcome` is an enum in code and exactly the documented strings in JSON
/// (docs/cli.md): pipelines compare them.
@Suite("Apply outcome in JSON")
struct ApplyOutcomeEncodingTests {
    @Test(
        "each outcome encodes as its documented string and decodes back",
        arguments: [
            (ApplyOutcome.converged, "converged"), (.waitingForDrain, "waiting-for-drain"), (.blocked, "blocked"),
        ])
    func documentedStrings(outcome: ApplyOutcome, text: String) throws {
        let document = ApplyDocument(
            cluster: "lab", revision: "r", outcome: outcome, passes: 1, operations: 0, failures: [],
            generationsIssued: [], unreachable: [], waitingUntil: nil)
        let json = try DocumentEncoding.json(document)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["outcome"] as? String == text)
        #expect(try DocumentEncoding.jsonLine(document, timestamp: Date()).contains("\"outcome\":\"\(text)\""))

        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        #expect(try decoder.decode(ApplyDocument.self, from: Data(json.utf8)).outcome == outcome)
    }

    @Test("the outcomes are exactly the three that docs/cli.md lists")
    func noOtherOutcome() {
        #expect(ApplyOutcome.allCases.map(\.rawValue) == ["converged", "waiting-for-drain", "blocked"])
    }
}
