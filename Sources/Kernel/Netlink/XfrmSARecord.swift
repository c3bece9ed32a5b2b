import MeshwardCore

/// An SA as the kernel reports it in a `XFRM_MSG_NEWSA` dump message: the fields Meshward
/// reads, whether or not the SA is one Meshward could have written.
struct XfrmSARecord: Hashable {
    var source: IPAddress
    var destination: IPAddress
    var spi: SPI
    /// `id.proto`: 50 for ESP.
    var protocolNumber: UInt8
    var mode: UInt8
    var reqid: Reqid
    /// `usersa_info.replay_window` (the legacy 8-bit window).
    var legacyReplayWindow: UInt8
    var flags: UInt8
    /// `XFRMA_REPLAY_ESN_VAL.replay_window`, when the attribute is present.
    var esnReplayWindow: UInt32?
    /// `XFRMA_SA_EXTRA_FLAGS`, 0 when absent.
    var extraFlags: UInt32
    var algorithms: [XfrmAlgorithm]
    var counters: SACounters
    /// True when the SA carries a non-zero mark or interface id: Meshward never writes one.
    var isMarked: Bool

    var identifier: SAIdentifier { SAIdentifier(destination: destination, spi: spi) }

    /// True for an ESP SA (the only protocol whose SPIs Meshward shares a space with).
    var isESP: Bool { protocolNumber == XfrmCodec.protocolESP }

    /// The SA as the model describes it; nil, with the reason, when it is not an ESP
    /// transport-mode SA with one of Meshward's ciphers.
    func securityAssociation() -> Result<SecurityAssociation, XfrmEncodingError> {
        guard isESP else { return .failure(XfrmEncodingError("protocol \(protocolNumber) is not ESP")) }
        guard mode == XfrmCodec.modeTransport else {
            return .failure(XfrmEncodingError("mode \(mode) is not transport"))
        }
        guard !isMarked else { return .failure(XfrmEncodingError("the SA carries a mark or interface id")) }
        guard let (cipher, key) = XfrmAlgorithm.cipher(of: algorithms) else {
            return .failure(XfrmEncodingError("algorithms \(algorithms.map(\.name)) are not a Meshward cipher"))
        }
        let esn = flags & XfrmCodec.stateFlagESN != 0
        return .success(
            SecurityAssociation(
                source: source, destination: destination, spi: spi, reqid: reqid, cipher: cipher,
                key: .material(KeyMaterial(bytes: key)), replayWindow: esnReplayWindow ?? UInt32(legacyReplayWindow),
                extendedSequenceNumbers: esn, counters: counters))
    }
}
