/// What loading a spec gave: the compiled intent when the spec is valid, and every problem found.
public struct SpecLoadResult: Sendable {
    /// The compiled intent; nil when any diagnostic is an error.
    public let intent: FleetIntent?
    /// Every error and warning, sorted by file, then line, then column.
    public let diagnostics: [Diagnostic]

    /// Creates a result.
    public init(intent: FleetIntent?, diagnostics: [Diagnostic]) {
        self.intent = intent
        self.diagnostics = diagnostics
    }

    /// The diagnostics that make the spec invalid.
    public var errors: [Diagnostic] { diagnostics.filter { $0.severity == .error } }

    /// The diagnostics that do not prevent compilation.
    public var warnings: [Diagnostic] { diagnostics.filter { $0.severity == .warning } }

    /// True when the spec compiled (there is no error).
    public var isValid: Bool { intent != nil }
}
