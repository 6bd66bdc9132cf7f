import CNcurses

/// What a terminal event means to the key map. Pure.
public enum KeyCodes {
    /// The `Key` for `input` on a screen `width` x `height`; nil for what the console ignores
    /// (other control characters, unknown function keys, mouse releases and motion).
    public static func key(for input: TerminalInput, width: Int, height: Int) -> Key? {
        switch input {
        case .character(let character): return key(for: character)
        case .keyCode(let code): return key(forCode: code)
        case .mouse(let x, let y, let buttons): return key(forMouse: buttons, x: x, y: y, width: width, height: height)
        case .resize(let width, let height): return .resize(width: width, height: height)
        }
    }

    static func key(for character: Character) -> Key? {
        switch character {
        case "\r", "\n": return .enter
        case "\t": return .tab
        case "\u{1B}": return .escape
        case "\u{7F}", "\u{08}": return .backspace
        default:
            guard let scalar = character.unicodeScalars.first, scalar.value >= 0x20 else { return nil }
            return .char(character)
        }
    }

    /// ncurses' KEY_* codes (from `keypad`), as the header numbers them.
    static let codes: [Int32: Key] = [
        KEY_UP: .up, KEY_DOWN: .down, KEY_LEFT: .left, KEY_RIGHT: .right,
        KEY_PPAGE: .pageUp, KEY_NPAGE: .pageDown, KEY_HOME: .home, KEY_END: .end,
        KEY_BTAB: .backTab, KEY_ENTER: .enter, KEY_BACKSPACE: .backspace,
        // Some terminals send the keypad's Home and End as these.
        KEY_A1: .home, KEY_C1: .end, KEY_A3: .pageUp, KEY_C3: .pageDown,
    ]

    static func key(forCode code: Int32) -> Key? { codes[code] }

    /// A press (or click) of the first button selects; the wheel scrolls as the arrows do.
    static func key(forMouse buttons: UInt32, x: Int, y: Int, width: Int, height: Int) -> Key? {
        if buttons & CursesConstant.wheelUp != 0 { return .up }
        if buttons & CursesConstant.wheelDown != 0 { return .down }
        let press = CursesConstant.button1Pressed | CursesConstant.button1Clicked | CursesConstant.button1DoubleClicked
        if buttons & press != 0 { return .click(x: x, y: y, width: width, height: height) }
        return nil
    }
}
