/// The role that keeps small named values: what the controller remembers of the last applied
/// spec (`controller.settings`), so that commands without a spec know the fleet.
public protocol MetadataStore: Sendable {
    /// The value of `key`, or nil when unset.
    func metadata(_ key: String) async throws -> String?

    /// Sets the value of `key`; nil deletes it. Fenced by the lease like every write.
    func setMetadata(_ key: String, _ value: String?) async throws
}
