/// One file of a spec as it was read: the path it was read from and its text.
public struct SpecSource: Sendable, Hashable, Codable {
    /// The path the file was read from, as its diagnostics name it.
    public let path: String
    /// The file's text.
    public let text: String

    /// A file of a spec.
    public init(path: String, text: String) {
        self.path = path
        self.text = text
    }
}
