import AgentWire
import Foundation
import GRPCCore
import Identity
import Kernel

extension AgentKernel {
    /// When the certificate the agent presented at the last handshake is valid; nil until a
    /// handshake succeeded.
    public var certificateValidity: ClosedRange<Date>? { check.acceptedValidity }

    /// Renews the agent's certificate over this connection, before `deadline`: the agent makes a
    /// new key and answers with a CSR (`RequestRenewal`), `issue` turns the CSR into the new
    /// certificate's DER (the cluster CA, recorded in the Store), and the agent checks it,
    /// writes it with its key and confirms (`CompleteRenewal`), then listens again with it. Both
    /// calls carry the lease epoch: a deposed controller renews nothing.
    ///
    /// Returns the new certificate's expiry. Throws `AgentError.renewalFailed` naming the step;
    /// the agent keeps its old key and certificate unless it confirmed.
    public func renewCertificate(
        deadline: ContinuousClock.Instant, issue: @Sendable ([UInt8]) async throws -> [UInt8]
    ) async throws -> Date {
        var request = Meshward_Agent_V1_RenewalRequest()
        request.protocolVersion = firstRequestVersion
        request.newestProtocolVersion = protocolVersions.upperBound
        request.epoch = epoch()
        let csr: [UInt8]
        do {
            let reply = try await onExecutor { [service, request, options = options(deadline)] in
                try await service.requestRenewal(request, options: options)
            }
            csr = Array(reply.csr)
        } catch {
            throw AgentError.renewalFailed(
                node: node, reason: "the agent at \(address) made no renewal request: \(describe(error))")
        }
        let certificate: [UInt8]
        do {
            certificate = try await issue(csr)
        } catch {
            throw AgentError.renewalFailed(node: node, reason: "no certificate was issued for its CSR: \(error)")
        }
        var complete = Meshward_Agent_V1_RenewalCertificate()
        complete.protocolVersion = firstRequestVersion
        complete.newestProtocolVersion = protocolVersions.upperBound
        complete.epoch = epoch()
        complete.certificate = Data(certificate)
        let stored: Bool
        do {
            stored = try await onExecutor { [service, complete, options = options(deadline)] in
                try await service.completeRenewal(complete, options: options).stored
            }
        } catch {
            throw AgentError.renewalFailed(
                node: node,
                reason: "the agent at \(address) did not confirm the new certificate (\(describe(error))); "
                    + "the next handshake shows which one it serves")
        }
        guard stored, let validity = PeerVerifier.validity(ofDER: certificate) else {
            throw AgentError.renewalFailed(
                node: node, reason: "the agent at \(address) did not store the new certificate")
        }
        return validity.upperBound
    }
}
