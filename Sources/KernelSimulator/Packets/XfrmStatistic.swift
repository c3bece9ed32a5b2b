/// The `/proc/net/xfrm_stat` counters the simulated kernel moves, named exactly as the kernel
/// names them.
public enum XfrmStatistic: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// ESP arrived for an SPI the receiver has no SA for (sender switched too early, or the
    /// receiver deleted the SA too soon).
    case inNoStates = "XfrmInNoStates"
    /// A required outbound template found no usable SA.
    case outNoStates = "XfrmOutNoStates"
    /// The packet did not pass the inbound policy's templates (plaintext where ESP is required).
    case inTemplateMismatch = "XfrmInTmplMismatch"
    /// Decryption or authentication failed: the receiver's key differs from the sender's.
    case inStateProtoError = "XfrmInStateProtoError"
    /// The sequence number was outside the replay window or already seen.
    case inStateSequenceError = "XfrmInStateSeqError"
    /// An SA was deleted while a packet was being transformed by it (kept for completeness; the
    /// model never moves it: a packet in flight that arrives after its SA went finds no SA for
    /// its SPI and counts `inNoStates`, as the kernel's lookup does).
    case outStateInvalid = "XfrmOutStateInvalid"
    /// As `outStateInvalid`, inbound.
    case inStateInvalid = "XfrmInStateInvalid"

    public var description: String { rawValue }

    /// Every counter at zero, as a freshly booted namespace reports them.
    public static var zeroed: [String: UInt64] {
        Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, 0) })
    }
}
