import Foundation
import MeshwardCore

/// Why a staging gate keeps an operation back in this pass: the step before it is not yet seen
/// in the kernels, or a peer it needs did not answer. The description is the wording plans,
/// errors and logs show.
public enum HoldReason: Sendable, Hashable, CustomStringConvertible {
    case noGeneration
    case generationNotPending(GenerationState)
    case keyBurned
    case receiverUnknown
    case receiverLacksInboundSA
    case templatePinsNoSPI
    case senderLacksSA
    case destinationUnowned
    case receiverLacksInboundSAAndPolicy
    case senderNotEncrypting
    case senderKeepsOutboundPolicy
    case receiverRequiresESP
    case senderPolicyPins
    case senderPinsOrHolds
    /// A peer the operation needs did not answer (an operation of no channel).
    case blocked(BlockReason)

    public var description: String {
        switch self {
        case .noGeneration: "no generation issued for this SA"
        case .generationNotPending(let state): "generation is \(state), not pending"
        case .keyBurned: "generation's key was used; it is burned"
        case .receiverUnknown: "receiver unknown"
        case .receiverLacksInboundSA: "the receiver does not hold the inbound SA yet"
        case .templatePinsNoSPI: "outbound template pins no SPI"
        case .senderLacksSA: "the sender does not hold the SA yet"
        case .destinationUnowned: "no node owns the destination"
        case .receiverLacksInboundSAAndPolicy: "the receiver does not hold the inbound SA and policy yet"
        case .senderNotEncrypting: "the sender does not encrypt yet"
        case .senderKeepsOutboundPolicy: "the sender still has its outbound policy"
        case .receiverRequiresESP: "the receiver still requires ESP"
        case .senderPolicyPins: "a policy of the sender still pins it"
        case .senderPinsOrHolds: "the sender still pins or holds it"
        case .blocked(let reason): reason.description
        }
    }
}

/// Why a channel waits for a node: its agent is waiting for enrollment, or it did not answer.
public enum BlockReason: Sendable, Hashable, CustomStringConvertible {
    /// `message` is the node's own (`KernelError.waitingForEnrollment`'s description).
    case waitingForEnrollment(node: String, message: String)
    /// `reason` is why the observation failed.
    case didNotAnswer(node: String, reason: String)

    public var node: String {
        switch self {
        case .waitingForEnrollment(let node, _), .didNotAnswer(let node, _): node
        }
    }

    public var description: String {
        switch self {
        case .waitingForEnrollment(_, let message): message
        case .didNotAnswer(let node, let reason): "node \(node) did not answer: \(reason)"
        }
    }
}
