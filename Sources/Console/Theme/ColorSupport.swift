/// How many colours the console may use. Decided once at start from the environment and what
/// ncurses reports, so the views and themes never ask the terminal themselves.
public enum ColorSupport: Int, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case none = 0
    case eight = 8
    case sixteen = 16
    case twoFiftySix = 256

    public static func < (a: ColorSupport, b: ColorSupport) -> Bool { a.rawValue < b.rawValue }

    public var description: String { self == .none ? "no colour" : "\(rawValue) colours" }

    /// - Parameters:
    ///   - noColor: `NO_COLOR`; any non-empty value turns colour off (no-color.org).
    ///   - term: `TERM`; unset, empty or `dumb` means no colour.
    ///   - colors: what ncurses reports (`COLORS` once colour has started, 0 when the terminal
    ///     has none); a negative number means unknown, and the `TERM` name decides.
    public static func detect(noColor: String?, term: String?, colors: Int) -> ColorSupport {
        if let noColor, !noColor.isEmpty { return .none }
        guard let term, !term.isEmpty, term != "dumb" else { return .none }
        if colors < 0 {
            if term.contains("256color") || term.contains("direct") { return .twoFiftySix }
            if term.contains("16color") { return .sixteen }
            return .eight
        }
        switch colors {
        case 256...: return .twoFiftySix
        case 16...: return .sixteen
        case 8...: return .eight
        default: return .none
        }
    }

    /// The same decision, reading the variables from an environment dictionary.
    public static func detect(environment: [String: String], colors: Int) -> ColorSupport {
        detect(noColor: environment["NO_COLOR"], term: environment["TERM"], colors: colors)
    }
}
