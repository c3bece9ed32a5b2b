import Reconciler

/// Why a node cannot be enrolled, said so that an operator can act on it.
public enum EnrollmentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The node's endpoint is not an agent: there is nothing to enroll.
    case notAnAgent(node: String, endpoint: String)
    /// The joining agent's proof does not verify with the token's verifier over this TLS
    /// session: the secret is wrong, or the proof was made in another session.
    case proofRefused(node: String, tokenID: String)

    public var description: String {
        switch self {
        case .notAnAgent(let node, let endpoint):
            "node \(node) has endpoint '\(endpoint)', not an agent: only a node with 'endpoint: agent' "
                + "(or agent:HOST[:PORT]) in the spec joins by token"
        case .proofRefused(let node, let tokenID):
            "the agent of node \(node) presented join token \(tokenID) with a proof that does not verify over "
                + "this TLS session: the token's secret is wrong, or the proof was recorded in another session; "
                + "nothing was issued and the token is unspent"
        }
    }
}
