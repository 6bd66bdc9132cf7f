import Foundation
import Testing

@testable import Console

@Suite("Themes, colour support and glyphs", .timeLimit(.minutes(5)))
struct ThemeTests {
    /// The repository's themes/ directory, found from this file.
    static let themesDirectory: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("themes").path
    }()

    @Test("each shipped theme loads from themes/ and maps every role", arguments: Theme.builtInNames)
    func shippedThemeLoads(name: String) throws {
        let theme = try Theme.named(name, searching: [Self.themesDirectory])
        #expect(theme.name == name)
        #expect(Set(theme.styles.keys) == Set(Role.allCases))
    }

    @Test("the embedded text of each theme equals themes/NAME.yaml byte for byte", arguments: Theme.builtInNames)
    func embeddedEqualsFile(name: String) throws {
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: "\(Self.themesDirectory)/\(name).yaml"))
        let embedded = try #require(EmbeddedThemes.yaml[name])
        #expect(Data(embedded.utf8) == onDisk)
        #expect(Theme.builtIn(name) != nil)
    }

    @Test("themes/ holds exactly the built-in themes")
    func noStrayThemes() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.themesDirectory).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files == Theme.builtInNames.map { "\($0).yaml" }.sorted())
        #expect(Set(EmbeddedThemes.yaml.keys) == Set(Theme.builtInNames))
    }

    @Test("with no themes/ directory the built-in theme is used; an unknown name is an error")
    func embeddedFallback() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-themes-\(UUID().uuidString)").path
        let theme = try Theme.named("light", searching: [missing])
        #expect(theme == Theme.builtIn("light"))
        #expect(theme.style(.selection) == Style(foreground: .named(.white), background: .indexed(25)))
        #expect(throws: ThemeError.self) { try Theme.named("solarized", searching: [missing]) }
        do {
            _ = try Theme.named("solarized", searching: [missing])
        } catch {
            #expect(error.description.contains("solarized.yaml: no such theme (built in: default, light, high-contrast, monochrome)"))
        }
    }

    @Test("a theme file beside the binary wins over the built-in one, and a bad one is an error, not a fallback")
    func fileWins() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("themes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var text = EmbeddedThemes.yaml["default"]!.replacingOccurrences(of: "name: default", with: "name: mine")
        text = text.replacingOccurrences(of: "error:     { fg: 203,", with: "error:     { fg: magenta,")
        try text.write(to: directory.appendingPathComponent("default.yaml"), atomically: true, encoding: .utf8)
        let theme = try Theme.named("default", searching: [directory.path])
        #expect(theme.name == "mine")
        #expect(theme.style(.error).foreground == .named(.magenta))

        try "roles: [".write(to: directory.appendingPathComponent("light.yaml"), atomically: true, encoding: .utf8)
        #expect(throws: ThemeError.self) { try Theme.named("light", searching: [directory.path]) }
    }

    @Test("a bad theme gives an error naming the file and the field", arguments: [
        (yaml: "roles: [", expected: "t.yaml: not valid YAML at line"),
        (yaml: "- 1\n- 2\n", expected: "t.yaml: a theme is a mapping with name and roles"),
        (yaml: "name: x\n", expected: "t.yaml: roles: missing"),
        (yaml: "name: x\ncolours: {}\nroles: {}\n", expected: "t.yaml: colours: unknown field"),
        (yaml: "roles: {text: {fg: red}}\n", expected: "t.yaml: roles.muted: missing"),
        (yaml: "roles: {txet: {fg: red}}\n", expected: "t.yaml: roles.txet: unknown role"),
        (yaml: "roles: {text: {fg: yelow}}\n", expected: "t.yaml: roles.text.fg: unknown colour \"yelow\""),
        (yaml: "roles: {text: {bg: 256}}\n", expected: "t.yaml: roles.text.bg: unknown colour 256"),
        (yaml: "roles: {text: {fg: bright-pink}}\n", expected: "t.yaml: roles.text.fg: unknown colour \"bright-pink\""),
        (yaml: "roles: {text: {fg: red, attrs: [blink]}}\n", expected: "t.yaml: roles.text.attrs: unknown attribute \"blink\""),
        (yaml: "roles: {text: {fg: red, colour: blue}}\n", expected: "t.yaml: roles.text.colour: unknown field"),
        (yaml: "roles: {text: red}\n", expected: "t.yaml: roles.text: must be a mapping"),
        (yaml: "name: 5\nroles: {}\n", expected: "t.yaml: name: must be a non-empty string"),
    ])
    func badTheme(yaml: String, expected: String) {
        do {
            let theme = try Theme.parse(yaml: yaml, file: "t.yaml")
            Issue.record("parsed a bad theme: \(theme)")
        } catch {
            #expect(error.description.hasPrefix(expected), "got: \(error.description)")
        }
    }

    @Test("a theme with every role parses colours in each spelling")
    func spellings() throws {
        let roles = Role.allCases.map { "  \($0.rawValue): { fg: default }" }.joined(separator: "\n")
        var yaml = "name: spell\nroles:\n" + roles + "\n"
        yaml = yaml.replacingOccurrences(of: "  text: { fg: default }", with: "  text: { fg: bright_red, bg: 17, attrs: bold }")
        yaml = yaml.replacingOccurrences(of: "  muted: { fg: default }", with: "  muted: { fg: BrightBlue, bg: \"200\", attrs: [reverse, underline] }")
        let theme = try Theme.parse(yaml: yaml, file: "spell.yaml")
        #expect(theme.style(.text) == Style(foreground: .bright(.red), background: .indexed(17), attributes: .bold))
        #expect(theme.style(.muted) == Style(foreground: .bright(.blue), background: .indexed(200), attributes: [.reverse, .underline]))
        #expect(theme.style(.ok) == Style())
    }

    @Test("colour degradation: each colour becomes the nearest the terminal has", arguments: [
        (TerminalColor.indexed(196), ColorSupport.twoFiftySix, TerminalColor?.some(.indexed(196))),
        (.indexed(196), .sixteen, .bright(.red)),
        (.indexed(196), .eight, .named(.red)),
        (.indexed(196), .none, nil),
        (.indexed(4), .sixteen, .named(.blue)),
        (.indexed(12), .sixteen, .bright(.blue)),
        (.indexed(12), .eight, .named(.blue)),
        (.indexed(244), .sixteen, .bright(.black)),
        (.indexed(244), .eight, .named(.white)),
        (.indexed(232), .eight, .named(.black)),
        (.indexed(255), .sixteen, .bright(.white)),
        (.indexed(24), .sixteen, .named(.cyan)),
        (.indexed(84), .eight, .named(.green)),
        (.indexed(214), .eight, .named(.yellow)),
        (.bright(.green), .sixteen, .bright(.green)),
        (.bright(.green), .eight, .named(.green)),
        (.bright(.black), .eight, .named(.white)),
        (.named(.magenta), .eight, .named(.magenta)),
        (.named(.magenta), .none, nil),
        (.default, .eight, .default),
        (.default, .none, nil),
    ])
    func degrade(color: TerminalColor, support: ColorSupport, expected: TerminalColor?) {
        #expect(color.degraded(to: support) == expected)
    }

    @Test("colour support from NO_COLOR, TERM and what ncurses reports", arguments: [
        (noColor: String?.some("1"), term: String?.some("xterm-256color"), colors: 256, expected: ColorSupport.none),
        (noColor: "", term: "xterm-256color", colors: 256, expected: .twoFiftySix),
        (noColor: nil, term: nil, colors: 256, expected: .none),
        (noColor: nil, term: "dumb", colors: 8, expected: .none),
        (noColor: nil, term: "xterm-256color", colors: 256, expected: .twoFiftySix),
        (noColor: nil, term: "xterm-256color", colors: 8, expected: .eight),
        (noColor: nil, term: "xterm", colors: 16, expected: .sixteen),
        (noColor: nil, term: "xterm", colors: 88, expected: .sixteen),
        (noColor: nil, term: "vt100", colors: 0, expected: .none),
        (noColor: nil, term: "linux", colors: 8, expected: .eight),
        (noColor: nil, term: "screen-256color", colors: -1, expected: .twoFiftySix),
        (noColor: nil, term: "rxvt-16color", colors: -1, expected: .sixteen),
        (noColor: nil, term: "screen", colors: -1, expected: .eight),
    ])
    func colorSupport(noColor: String?, term: String?, colors: Int, expected: ColorSupport) {
        #expect(ColorSupport.detect(noColor: noColor, term: term, colors: colors) == expected)
        var environment: [String: String] = [:]
        environment["NO_COLOR"] = noColor
        environment["TERM"] = term
        #expect(ColorSupport.detect(environment: environment, colors: colors) == expected)
    }

    @Test("without colour every theme falls back to the monochrome attributes")
    func monochromeFallback() throws {
        for name in Theme.builtInNames {
            let resolved = try #require(Theme.builtIn(name)).resolved(for: .none)
            for role in Role.allCases {
                #expect(resolved[role].foreground == -1 && resolved[role].background == -1)
            }
            #expect(resolved[.selection].attributes == .reverse)
            #expect(resolved[.error].attributes.contains(.reverse))
            #expect(resolved[.active].attributes == .bold)
            #expect(resolved[.header].attributes == [.reverse, .bold])
            #expect(resolved[.text].attributes == [])
        }
        // Roles that must stay apart without colour do.
        let mono = Theme.monochrome.resolved(for: .none)
        #expect(mono[.active] != mono[.standby])
        #expect(mono[.warning] != mono[.error])
        #expect(mono[.selection] != mono[.text])
    }

    @Test("resolving for 256, 16 and 8 colours", arguments: [
        (ColorSupport.twoFiftySix, Role.error, 203, -1, TextAttributes.bold),
        (.sixteen, .error, 9, -1, .bold),
        (.eight, .error, 1, -1, .bold),
        (.twoFiftySix, .header, 15, 24, .bold),
        (.sixteen, .header, 15, 6, .bold),
        (.eight, .header, 7, 6, .bold),
        (.eight, .active, 2, -1, .bold),
        (.twoFiftySix, .selection, 0, 117, TextAttributes()),
        (.eight, .selection, 0, 6, TextAttributes()),
    ])
    func resolveDefault(support: ColorSupport, role: Role, fg: Int, bg: Int, attributes: TextAttributes) throws {
        let resolved = try #require(Theme.builtIn("default")).resolved(for: support)
        #expect(resolved[role] == ResolvedStyle(foreground: fg, background: bg, attributes: attributes))
    }

    @Test("on 8 colours a bright foreground turns bold, and colours that collapse drop the background")
    func eightColourRules() {
        let bright = ResolvedStyle(Style(foreground: .bright(.cyan)), support: .eight)
        #expect(bright == ResolvedStyle(foreground: 6, background: -1, attributes: .bold))
        let collapsing = ResolvedStyle(Style(foreground: .indexed(250), background: .indexed(252)), support: .eight)
        #expect(collapsing == ResolvedStyle(foreground: 7, background: -1, attributes: []))
    }

    @Test("glyphs follow the locale: LC_ALL, then LC_CTYPE, then LANG", arguments: [
        (lcAll: String?.none, lcCtype: String?.none, lang: String?.some("en_US.UTF-8"), unicode: true),
        (lcAll: nil, lcCtype: nil, lang: "C.utf8", unicode: true),
        (lcAll: nil, lcCtype: nil, lang: "de_DE.utf-8@euro", unicode: true),
        (lcAll: nil, lcCtype: nil, lang: "C", unicode: false),
        (lcAll: nil, lcCtype: nil, lang: "POSIX", unicode: false),
        (lcAll: nil, lcCtype: nil, lang: "en_US.ISO-8859-1", unicode: false),
        (lcAll: nil, lcCtype: nil, lang: nil, unicode: false),
        (lcAll: "C", lcCtype: nil, lang: "en_US.UTF-8", unicode: false),
        (lcAll: "", lcCtype: "en_GB.UTF-8", lang: "C", unicode: true),
        (lcAll: nil, lcCtype: "C", lang: "en_US.UTF-8", unicode: false),
        (lcAll: "en_US.UTF-8", lcCtype: "C", lang: "C", unicode: true),
        (lcAll: nil, lcCtype: nil, lang: "UTF-8", unicode: false),
    ])
    func glyphs(lcAll: String?, lcCtype: String?, lang: String?, unicode: Bool) {
        let glyphs = Glyphs.forLocale(lcAll: lcAll, lcCtype: lcCtype, lang: lang)
        #expect(glyphs == (unicode ? Glyphs.unicode : Glyphs.ascii))
        var environment: [String: String] = [:]
        environment["LC_ALL"] = lcAll
        environment["LC_CTYPE"] = lcCtype
        environment["LANG"] = lang
        #expect(Glyphs.forEnvironment(environment) == glyphs)
    }

    @Test("ASCII glyphs are plain ASCII, Unicode ones one column each")
    func glyphSets() {
        let ascii = Glyphs.ascii
        let all = [ascii.horizontal, ascii.vertical, ascii.topLeft, ascii.topRight, ascii.bottomLeft, ascii.bottomRight, ascii.barFull,
                   ascii.barEmpty, ascii.arrowUp, ascii.arrowDown, ascii.arrowLeft, ascii.arrowRight, ascii.ellipsis, ascii.pointer]
        #expect(all.allSatisfy { $0.isASCII })
        let unicode = Glyphs.unicode
        let wide = [unicode.horizontal, unicode.vertical, unicode.barFull, unicode.barEmpty, unicode.arrowUp, unicode.ellipsis, unicode.pointer]
        #expect(wide.allSatisfy { TextMeasure.oneColumn($0) == $0 })
    }
}
