import Foundation
import KubeAPI

/// How one role looks: colours and attributes, as a theme file writes them.
public struct Style: Sendable, Equatable {
    public var foreground: TerminalColor
    public var background: TerminalColor
    public var attributes: TextAttributes

    public init(foreground: TerminalColor = .default, background: TerminalColor = .default, attributes: TextAttributes = []) {
        self.foreground = foreground
        self.background = background
        self.attributes = attributes
    }
}

/// A theme file that cannot be used, with the file and the field at fault, so the person who
/// wrote it can fix it without reading code.
public struct ThemeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// A dotted path such as `roles.warning.fg`; nil when the whole file is at fault.
    public var field: String?
    public var message: String

    public init(file: String, field: String? = nil, message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String { [file, field, message].compactMap { $0 }.joined(separator: ": ") }
}

/// Maps every `Role` to a `Style`. Views only name roles; the theme, resolved for the terminal's
/// `ColorSupport`, decides what they look like.
///
/// A theme file (`themes/NAME.yaml`):
/// ```yaml
/// name: default
/// roles:
///   error: { fg: bright-red, bg: default, attrs: [bold] }
/// ```
/// Colours: `default`, black, red, green, yellow, blue, magenta, cyan, white, `bright-NAME`, or a
/// 256-colour index. Attributes: bold, reverse, underline. Every role must be present, so a
/// theme never leaves a role to chance.
public struct Theme: Sendable, Equatable {
    public var name: String
    public var styles: [Role: Style]

    public init(name: String, styles: [Role: Style]) {
        self.name = name
        self.styles = styles
    }

    public func style(_ role: Role) -> Style { styles[role] ?? Style() }

    // MARK: Loading

    /// The themes shipped with the console, also compiled in (`EmbeddedThemes`).
    public static let builtInNames = ["default", "light", "high-contrast", "monochrome"]

    /// A shipped theme from the text compiled into the binary; nil for another name.
    public static func builtIn(_ name: String) -> Theme? {
        guard let text = EmbeddedThemes.yaml[name] else { return nil }
        // The embedded text is tested to parse; a failure here is a build defect, not input.
        return try? parse(yaml: text, file: "built-in theme \(name)")
    }

    /// The theme that says what each role looks like with no colour at all: with `NO_COLOR`, or
    /// on a terminal without colours, every theme falls back to its attributes.
    public static let monochrome: Theme = builtIn("monochrome") ?? Theme(name: "monochrome", styles: [:])

    /// `NAME.yaml` from the first of `directories` that has it, else the built-in theme of that
    /// name. A file that exists but is wrong is an error, not a silent fallback.
    public static func named(_ name: String, searching directories: [String]) throws(ThemeError) -> Theme {
        guard !name.isEmpty, !name.contains("/"), !name.hasPrefix(".") else {
            throw ThemeError(file: name, message: "not a theme name")
        }
        for directory in directories {
            let path = (directory as NSString).appendingPathComponent("\(name).yaml")
            if FileManager.default.fileExists(atPath: path) { return try load(file: path) }
        }
        if let theme = builtIn(name) { return theme }
        throw ThemeError(
            file: "\(name).yaml", message: "no such theme (built in: \(builtInNames.joined(separator: ", ")))")
    }

    public static func load(file path: String) throws(ThemeError) -> Theme {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ThemeError(file: path, message: "cannot be read (\((error as NSError).localizedDescription))")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ThemeError(file: path, message: "is not UTF-8 text") }
        return try parse(yaml: text, file: path)
    }

    /// Parses a theme; `file` names it in errors.
    public static func parse(yaml text: String, file: String) throws(ThemeError) -> Theme {
        let root: JSONValue
        do {
            root = try JSONValue.parseYAML(text, source: file)
        } catch {
            throw ThemeError(file: file, message: Self.yamlMessage(error.description, file: file))
        }
        guard let top = root.objectValue else { throw ThemeError(file: file, message: "a theme is a mapping with name and roles") }
        if let unknown = top.keys.sorted().first(where: { !["name", "description", "roles"].contains($0) }) {
            throw ThemeError(file: file, field: unknown, message: "unknown field (a theme has name, description and roles)")
        }
        var name = (file as NSString).lastPathComponent
        if name.hasSuffix(".yaml") { name = String(name.dropLast(5)) }
        if let value = top["name"] {
            guard let string = value.stringValue, !string.isEmpty else {
                throw ThemeError(file: file, field: "name", message: "must be a non-empty string")
            }
            name = string
        }
        if let value = top["description"], value.stringValue == nil {
            throw ThemeError(file: file, field: "description", message: "must be a string")
        }
        guard let rolesValue = top["roles"] else {
            throw ThemeError(file: file, field: "roles", message: "missing: a theme maps every role (\(Self.roleList)) to a style")
        }
        guard let roles = rolesValue.objectValue else {
            throw ThemeError(file: file, field: "roles", message: "must be a mapping of role to style")
        }
        if let unknown = roles.keys.sorted().first(where: { Role(rawValue: $0) == nil }) {
            throw ThemeError(file: file, field: "roles.\(unknown)", message: "unknown role (roles are \(Self.roleList))")
        }
        var styles: [Role: Style] = [:]
        for role in Role.allCases {
            guard let value = roles[role.rawValue] else {
                throw ThemeError(file: file, field: "roles.\(role.rawValue)", message: "missing: every role needs a style")
            }
            styles[role] = try style(value, field: "roles.\(role.rawValue)", file: file)
        }
        return Theme(name: name, styles: styles)
    }

    static let roleList = Role.allCases.map(\.rawValue).joined(separator: ", ")

    static func style(_ value: JSONValue, field: String, file: String) throws(ThemeError) -> Style {
        guard let object = value.objectValue else {
            throw ThemeError(file: file, field: field, message: "must be a mapping with fg, bg and attrs")
        }
        if let unknown = object.keys.sorted().first(where: { !["fg", "bg", "attrs"].contains($0) }) {
            throw ThemeError(file: file, field: "\(field).\(unknown)", message: "unknown field (a style has fg, bg and attrs)")
        }
        var style = Style()
        if let fg = object["fg"] { style.foreground = try color(fg, field: "\(field).fg", file: file) }
        if let bg = object["bg"] { style.background = try color(bg, field: "\(field).bg", file: file) }
        if let attrs = object["attrs"] {
            let names: [JSONValue]
            switch attrs {
            case .array(let array): names = array
            case .string: names = [attrs]
            case .null: names = []
            default: throw ThemeError(file: file, field: "\(field).attrs", message: "must be a list of bold, reverse, underline")
            }
            for name in names {
                guard let word = name.stringValue, let attribute = TextAttributes(name: word) else {
                    throw ThemeError(
                        file: file, field: "\(field).attrs", message: "unknown attribute \(Self.show(name)) (use bold, reverse, underline)")
                }
                style.attributes.insert(attribute)
            }
        }
        return style
    }

    static func color(_ value: JSONValue, field: String, file: String) throws(ThemeError) -> TerminalColor {
        let text: String? = switch value {
        case .string(let string): string
        case .int(let number): String(number)
        default: nil
        }
        guard let text, let color = TerminalColor(name: text) else {
            throw ThemeError(
                file: file, field: field,
                message: "unknown colour \(Self.show(value)) (use default, black, red, green, yellow, blue, magenta, cyan, white, bright-NAME or 0-255)")
        }
        return color
    }

    static func show(_ value: JSONValue) -> String {
        switch value {
        case .string(let string): "\"\(string)\""
        case .int(let number): "\(number)"
        case .double(let number): "\(number)"
        case .bool(let flag): "\(flag)"
        case .null: "null"
        case .array: "a list"
        case .object: "a mapping"
        }
    }

    /// KubeAPI's message already starts with the source; keep only what follows it.
    static func yamlMessage(_ message: String, file: String) -> String {
        guard let range = message.range(of: file + ": ") else { return message }
        return String(message[range.upperBound...])
    }

    // MARK: Resolving for a terminal

    /// The theme as this terminal can show it: colours degraded to `support`, and with no colour
    /// at all, the monochrome theme's attributes for every role.
    public func resolved(for support: ColorSupport) -> ResolvedTheme {
        var styles: [Role: ResolvedStyle] = [:]
        for role in Role.allCases {
            if support == .none {
                styles[role] = ResolvedStyle(foreground: -1, background: -1, attributes: Theme.monochrome.style(role).attributes)
            } else {
                styles[role] = ResolvedStyle(style(role), support: support)
            }
        }
        return ResolvedTheme(name: name, support: support, styles: styles)
    }
}

/// A role's look in ncurses terms: colour numbers (-1 the terminal's default) and attributes.
public struct ResolvedStyle: Sendable, Hashable {
    public var foreground: Int
    public var background: Int
    public var attributes: TextAttributes

    public init(foreground: Int, background: Int, attributes: TextAttributes) {
        self.foreground = foreground
        self.background = background
        self.attributes = attributes
    }

    /// Degrades both colours. On 8 colours a bright foreground that became its basic colour is
    /// drawn bold, which most terminals show bright; colours that collapse onto each other drop
    /// the background so text never vanishes.
    init(_ style: Style, support: ColorSupport) {
        let fg = style.foreground.degraded(to: support) ?? .default
        let bg = style.background.degraded(to: support) ?? .default
        var attributes = style.attributes
        if support == .eight, case .bright(let base) = style.foreground, fg == .named(base) { attributes.insert(.bold) }
        self.foreground = fg.cursesNumber
        self.background = (fg == bg && fg != .default) ? -1 : bg.cursesNumber
        self.attributes = attributes
    }
}

/// A theme resolved for one terminal: what the backend draws each role with.
public struct ResolvedTheme: Sendable, Equatable {
    public let name: String
    public let support: ColorSupport
    public let styles: [Role: ResolvedStyle]

    public subscript(role: Role) -> ResolvedStyle {
        styles[role] ?? ResolvedStyle(foreground: -1, background: -1, attributes: [])
    }
}
