/// How log lines are written (`--log-format`).
public enum LogFormat: String, Sendable, CaseIterable {
    /// For people: `2026-12-01T09:30:00.123Z notice meshward: cycle done outcome=converged`;
    /// under systemd (`JOURNAL_STREAM` set) without the time, which the journal adds, and with
    /// the syslog priority prefix (`<5>notice meshward: …`) that journald reads.
    case text
    /// For machines: one JSON object per line with `time`, `level`, `label`, `message` and the
    /// metadata as members (nested metadata as nested objects).
    case json
}
