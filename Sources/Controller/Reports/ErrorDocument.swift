import DesiredState
import Foundation
import Reconciler

/// What a command prints on standard output with `--output json` when it fails, so that a
/// pipeline reading standard output always gets one JSON document:
/// `{"error": {"message", "file"?, "line"?, "column"?, "diagnostics"?}}`.
///
/// `file`, `line` and `column` locate the first error of an invalid spec; `diagnostics` then
/// lists every diagnostic as `validate --output json` does.
public struct ErrorDocument: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var message: String
        public var file: String?
        public var line: Int?
        public var column: Int?
        public var diagnostics: [Diagnostic]?
    }

    public var error: Detail

    /// The document for `error`: a spec's diagnostics are located, anything else is its message.
    public init(_ error: any Error) {
        if let controllerError = error as? ControllerError, case .invalidSpec(let diagnostics) = controllerError {
            let first = diagnostics.first { $0.severity == .error } ?? diagnostics.first
            self.error = Detail(
                message: first?.message ?? controllerError.description, file: first?.file, line: first?.line,
                column: first?.column, diagnostics: diagnostics)
        } else {
            self.error = Detail(message: "\(error)")
        }
    }

    /// A document with just a message (usage errors).
    public init(message: String) {
        self.error = Detail(message: message)
    }
}
