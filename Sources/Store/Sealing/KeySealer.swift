import MeshwardCore

/// The role that seals generation keys at rest and opens them again: the only holder of the
/// master key.
///
/// A store never sees the master key, only this role; so a store on a database server keeps
/// sealed keys in rows while the key that opens them stays in a file on the controller's host
/// (`--master-key-file`). Sealing binds each key to its row through associated data
/// (`SealingContext`), so a sealed key copied to another row does not open.
public protocol KeySealer: Sendable {
    /// Written beside every sealed key, so that a later algorithm can coexist with this one.
    var sealVersion: Int { get }

    /// A context for sealing or opening many keys in a row (one transaction's, one bulk load):
    /// the cost of keying the cipher is paid once per batch. Used on one thread, then dropped.
    func makeCipher() throws -> any KeySealingCipher
}
