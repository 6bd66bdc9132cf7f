/// The eight colours every colour terminal has, in their ncurses numbering.
public enum ANSIColor: Int, Sendable, CaseIterable, Equatable {
    case black = 0, red, green, yellow, blue, magenta, cyan, white

    public var name: String { "\(self)" }
}

/// A colour as a theme names it. It is degraded to what the terminal can show when the theme is
/// resolved, so a theme written for 256 colours still reads on an 8-colour console.
public enum TerminalColor: Sendable, Hashable, CustomStringConvertible {
    /// The terminal's own foreground or background.
    case `default`
    /// One of the eight basic colours (ncurses 0-7).
    case named(ANSIColor)
    /// The bright variant of a basic colour (ncurses 8-15, needs 16 colours).
    case bright(ANSIColor)
    /// An xterm 256-colour palette index (needs 256 colours).
    case indexed(Int)

    /// `default`, a basic name (`red`), `bright-NAME` (also `brightNAME`, `bright_NAME`), or a
    /// palette index 0-255; nil for anything else.
    public init?(name: String) {
        let lowered = name.lowercased()
        if lowered == "default" {
            self = .default
            return
        }
        if let index = Int(lowered) {
            guard (0...255).contains(index) else { return nil }
            self = .indexed(index)
            return
        }
        for prefix in ["bright-", "bright_", "bright"] where lowered.hasPrefix(prefix) {
            guard let base = ANSIColor.allCases.first(where: { $0.name == lowered.dropFirst(prefix.count) }) else { return nil }
            self = .bright(base)
            return
        }
        guard let base = ANSIColor.allCases.first(where: { $0.name == lowered }) else { return nil }
        self = .named(base)
    }

    public var description: String {
        switch self {
        case .default: "default"
        case .named(let color): color.name
        case .bright(let color): "bright-\(color.name)"
        case .indexed(let index): "\(index)"
        }
    }

    /// The ncurses colour number: -1 for the terminal's default, else 0-255.
    public var cursesNumber: Int {
        switch self {
        case .default: -1
        case .named(let color): color.rawValue
        case .bright(let color): color.rawValue + 8
        case .indexed(let index): index
        }
    }

    /// The nearest colour the terminal can show; nil when it shows none. Palette colours are
    /// matched by hue, not by distance in RGB: by distance, most light colours would turn grey
    /// and lose the meaning (a green "ok" must stay green on an 8-colour console).
    public func degraded(to support: ColorSupport) -> TerminalColor? {
        switch (support, self) {
        case (.none, _): return nil
        case (_, .default): return .default
        case (.twoFiftySix, _): return self
        case (.sixteen, .named), (.sixteen, .bright), (.eight, .named): return self
        case (.eight, .bright(let base)): return base == .black ? .named(.white) : .named(base)
        case (.sixteen, .indexed(let index)) where index < 16, (.eight, .indexed(let index)) where index < 16:
            return Self.basic(index).degraded(to: support)
        case (.sixteen, .indexed(let index)): return Self.approximate(Self.rgb(index), sixteen: true)
        case (.eight, .indexed(let index)): return Self.approximate(Self.rgb(index), sixteen: false)
        }
    }

    /// A basic colour for an RGB value: greys by lightness, the rest by the hue's sector, bright
    /// (with 16 colours) when the colour is light.
    static func approximate(_ rgb: (Int, Int, Int), sixteen: Bool) -> TerminalColor {
        let (r, g, b) = rgb
        let high = max(r, g, b), low = min(r, g, b), spread = high - low
        if spread < 48 {
            let lightness = (high + low) / 2
            if sixteen {
                return lightness < 48 ? .named(.black) : lightness < 160 ? .bright(.black) : lightness < 224 ? .named(.white) : .bright(.white)
            }
            return lightness < 100 ? .named(.black) : .named(.white)
        }
        var hue: Double
        if high == r {
            hue = 60 * Double(g - b) / Double(spread)
            if hue < 0 { hue += 360 }
        } else if high == g {
            hue = 60 * Double(b - r) / Double(spread) + 120
        } else {
            hue = 60 * Double(r - g) / Double(spread) + 240
        }
        let base: ANSIColor = switch hue {
        case ..<30: .red
        case ..<90: .yellow
        case ..<150: .green
        case ..<205: .cyan
        case ..<270: .blue
        case ..<330: .magenta
        default: .red
        }
        return sixteen && high > 200 ? .bright(base) : .named(base)
    }

    /// 0-7 as a named colour, 8-15 as a bright one.
    static func basic(_ index: Int) -> TerminalColor {
        index < 8 ? .named(ANSIColor(rawValue: index)!) : .bright(ANSIColor(rawValue: index - 8)!)
    }

    /// xterm's palette: the 16 system colours, the 6x6x6 cube, then 24 greys.
    static func rgb(_ index: Int) -> (Int, Int, Int) {
        switch index {
        case 0..<16: return systemPalette[index]
        case 16..<232:
            let levels = [0, 95, 135, 175, 215, 255]
            let cube = index - 16
            return (levels[cube / 36], levels[(cube / 6) % 6], levels[cube % 6])
        default:
            let grey = 8 + 10 * (min(index, 255) - 232)
            return (grey, grey, grey)
        }
    }

    static let systemPalette: [(Int, Int, Int)] = [
        (0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128), (128, 0, 128), (0, 128, 128), (192, 192, 192),
        (128, 128, 128), (255, 0, 0), (0, 255, 0), (255, 255, 0), (0, 0, 255), (255, 0, 255), (0, 255, 255), (255, 255, 255),
    ]
}

/// How a cell is emphasised; the only means of telling roles apart without colour.
public struct TextAttributes: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let bold = TextAttributes(rawValue: 1)
    public static let reverse = TextAttributes(rawValue: 2)
    public static let underline = TextAttributes(rawValue: 4)

    static let names: [(String, TextAttributes)] = [("bold", .bold), ("reverse", .reverse), ("underline", .underline)]

    public init?(name: String) {
        guard let match = Self.names.first(where: { $0.0 == name.lowercased() }) else { return nil }
        self = match.1
    }

    public var description: String {
        let words = Self.names.filter { contains($0.1) }.map(\.0)
        return words.isEmpty ? "none" : words.joined(separator: "+")
    }
}
