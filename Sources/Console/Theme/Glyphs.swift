/// The drawing characters the views use. Every one is a single column wide; the ASCII set is for
/// terminals whose locale is not UTF-8, where box drawing would come out as garbage.
public struct Glyphs: Sendable, Equatable {
    public var isUnicode: Bool
    public var horizontal: Character
    public var vertical: Character
    public var topLeft: Character
    public var topRight: Character
    public var bottomLeft: Character
    public var bottomRight: Character
    public var barFull: Character
    public var barEmpty: Character
    public var arrowUp: Character
    public var arrowDown: Character
    public var arrowLeft: Character
    public var arrowRight: Character
    /// Marks text cut to fit.
    public var ellipsis: Character
    /// Marks the selected row or pod.
    public var pointer: Character

    public static let unicode = Glyphs(
        isUnicode: true, horizontal: "─", vertical: "│", topLeft: "┌", topRight: "┐", bottomLeft: "└", bottomRight: "┘",
        barFull: "█", barEmpty: "░", arrowUp: "↑", arrowDown: "↓", arrowLeft: "←", arrowRight: "→", ellipsis: "…", pointer: "›")

    public static let ascii = Glyphs(
        isUnicode: false, horizontal: "-", vertical: "|", topLeft: "+", topRight: "+", bottomLeft: "+", bottomRight: "+",
        barFull: "#", barEmpty: ".", arrowUp: "^", arrowDown: "v", arrowLeft: "<", arrowRight: ">", ellipsis: "~", pointer: ">")

    /// Whether the locale's character set is UTF-8, from `LC_ALL`, `LC_CTYPE` and `LANG` as
    /// POSIX ranks them: the first one set and non-empty decides; none set is the C locale.
    public static func localeIsUTF8(lcAll: String?, lcCtype: String?, lang: String?) -> Bool {
        guard let locale = [lcAll, lcCtype, lang].compactMap({ $0 }).first(where: { !$0.isEmpty }) else { return false }
        // The codeset follows the dot, before any @modifier: en_US.UTF-8, C.utf8, de_DE.utf-8@euro.
        guard let dot = locale.firstIndex(of: ".") else { return false }
        let codeset = locale[locale.index(after: dot)...].prefix { $0 != "@" }.lowercased()
        return codeset == "utf-8" || codeset == "utf8"
    }

    public static func forLocale(lcAll: String?, lcCtype: String?, lang: String?) -> Glyphs {
        localeIsUTF8(lcAll: lcAll, lcCtype: lcCtype, lang: lang) ? .unicode : .ascii
    }

    public static func forEnvironment(_ environment: [String: String]) -> Glyphs {
        forLocale(lcAll: environment["LC_ALL"], lcCtype: environment["LC_CTYPE"], lang: environment["LANG"])
    }
}
