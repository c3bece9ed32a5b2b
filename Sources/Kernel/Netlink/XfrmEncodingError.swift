/// An operation that cannot be expressed as an XFRM message (a key that is only a fingerprint,
/// a key whose length does not fit the cipher). The operation fails with EINVAL and this text;
/// nothing is sent for it.
struct XfrmEncodingError: Error, Hashable, CustomStringConvertible {
    var reason: String

    init(_ reason: String) { self.reason = reason }

    var description: String { reason }
}
