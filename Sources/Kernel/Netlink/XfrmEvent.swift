/// What one message of the XFRM multicast groups says about a kernel's owned objects.
enum XfrmEvent: Hashable {
    /// The owned objects changed exactly so (each change may be a no-op for a model that
    /// already holds it).
    case changes([KernelChange])
    /// Nothing a watch reports changed: a foreign or non-ESP object, a soft expiry.
    case nothing
    /// The message cannot be attributed to single objects (a flush, a type the watch does not
    /// know): the watch dumps the kernel and resynchronises.
    case resynchronize(reason: String)
}
