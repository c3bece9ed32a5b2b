/// Reads and writes the spec's durations: `90s`, `5m`, `24h`, `7d`, `500ms`, or combinations
/// such as `1h30m`, units from largest to smallest, each at most once.
public enum SpecDuration {
    /// The longest duration a spec may hold: ten years.
    static let maximumSeconds: Int64 = 3650 * 86_400

    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("d", 86_400_000), ("h", 3_600_000), ("ms", 1), ("m", 60_000), ("s", 1_000),
    ]
    /// The order units must appear in.
    private static let rank: [String: Int] = ["d": 0, "h": 1, "m": 2, "s": 3, "ms": 4]

    /// Parses `text`; the error is a message that says what is wrong and shows valid forms.
    public static func parse(_ text: String) -> Result<Duration, DurationError> {
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { return .failure(.init("empty duration")) }
        if scalars.first == "-" { return .failure(.init("negative duration '\(text)'")) }
        var index = 0
        var total: Int64 = 0
        var lastRank = -1
        while index < scalars.count {
            var digits = ""
            while index < scalars.count, scalars[index].properties.numericType == .decimal,
                scalars[index].isASCII
            {
                digits.unicodeScalars.append(scalars[index])
                index += 1
            }
            guard !digits.isEmpty else {
                return .failure(
                    .init(
                        "malformed duration '\(text)': expected a number at '\(String(String.UnicodeScalarView(scalars[index...])))'"
                    ))
            }
            if index < scalars.count, scalars[index] == "." {
                return .failure(.init(fractionMessage(text, whole: digits, from: scalars[(index + 1)...])))
            }
            var unit = ""
            while index < scalars.count, scalars[index].properties.isAlphabetic {
                unit.unicodeScalars.append(scalars[index])
                index += 1
            }
            guard !unit.isEmpty else {
                return .failure(
                    .init(
                        "malformed duration '\(text)': add a unit: '\(digits)s' (or d, h, m, ms)"
                    ))
            }
            guard let entry = units.first(where: { $0.suffix == unit }), let unitRank = rank[unit] else {
                return .failure(.init("malformed duration '\(text)': unknown unit '\(unit)' (use d, h, m, s or ms)"))
            }
            guard unitRank > lastRank else {
                return .failure(
                    .init(
                        "malformed duration '\(text)': units must go from largest to smallest, each once (e.g. '1h30m')"
                    ))
            }
            lastRank = unitRank
            guard digits.count <= 12, let value = Int64(digits) else {
                return .failure(.init("duration '\(text)' is too long (at most 3650d)"))
            }
            total += value * entry.milliseconds
            if total > maximumSeconds * 1000 {
                return .failure(.init("duration '\(text)' is too long (at most 3650d)"))
            }
        }
        return .success(.milliseconds(total))
    }

    /// Fractions such as `1.5h` are not read; the message offers the whole-unit spelling when the
    /// fraction is a whole number of milliseconds (`1.5h` -> `1h30m`).
    private static func fractionMessage(
        _ text: String, whole: String, from rest: ArraySlice<Unicode.Scalar>
    ) -> String {
        let base = "malformed duration '\(text)': fractions are not supported"
        let fraction = String(
            String.UnicodeScalarView(rest.prefix { $0.isASCII && $0.properties.numericType == .decimal }))
        let unit = String(String.UnicodeScalarView(rest.dropFirst(fraction.count)))
        guard !fraction.isEmpty, fraction.count <= 9, whole.count <= 6, let integer = Int64(whole),
            let numerator = Int64(fraction), let size = units.first(where: { $0.suffix == unit })?.milliseconds
        else { return base + "; combine whole units instead, e.g. '1h30m'" }
        var scale: Int64 = 1
        for _ in fraction { scale *= 10 }
        let product = numerator * size
        guard product % scale == 0 else { return base + "; combine whole units instead, e.g. '1h30m'" }
        let milliseconds = integer * size + product / scale
        return base + "; write '\(format(.milliseconds(milliseconds)))'"
    }

    /// The shortest spec spelling of `duration`, e.g. `1h30m`, `5s`, `0s`, `250ms`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        var milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        guard milliseconds > 0 else { return "0s" }
        var text = ""
        for (suffix, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            let count = milliseconds / size
            if count > 0 {
                text += "\(count)\(suffix)"
                milliseconds -= count * size
            }
        }
        return text
    }
}

/// Why a duration could not be read.
public struct DurationError: Error, Equatable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }

    public var description: String { message }
}
