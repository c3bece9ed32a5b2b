/// Bytes from the kernel that do not form what they claim to be: a truncated message, an
/// attribute that runs past its message, a structure shorter than its kernel size.
///
/// Decoding never traps on such input; it throws this.
struct NetlinkDecodingError: Error, Hashable, CustomStringConvertible {
    /// What was being decoded (`xfrm_usersa_info`, `nlattr 18`, `nlmsghdr`).
    var context: String
    /// What was wrong with it.
    var reason: String

    init(_ context: String, _ reason: String) {
        self.context = context
        self.reason = reason
    }

    var description: String { "malformed \(context): \(reason)" }
}
