/// The release this binary is, as `meshward --version` prints it.
enum MeshwardVersion {
    /// Semantic versioning: a release that changes a JSON document's meaning, the spec format,
    /// or the Store's layout incompatibly raises the major number (docs/deploy.md).
    static let current = "0.3.0"
}
