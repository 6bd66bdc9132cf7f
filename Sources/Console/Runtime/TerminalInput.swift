/// What the terminal sends, as ncurses decodes it, before the key map gives it a meaning.
public enum TerminalInput: Sendable, Equatable {
    /// A character, control characters included (Ctrl-C is U+0003, Esc U+001B, Enter U+000D).
    case character(Character)
    /// An ncurses key code (`KEY_UP`, `KEY_NPAGE`, ...), from `wget_wch`'s KEY_CODE_YES.
    case keyCode(Int32)
    /// A mouse event: the cell and ncurses' button state bits.
    case mouse(x: Int, y: Int, buttons: UInt32)
    /// The terminal's new size, in cells.
    case resize(width: Int, height: Int)
}

/// ncurses' numbers that the C header defines as macros Swift cannot import.
enum CursesConstant {
    // Attributes: NCURSES_BITS(mask, shift) = mask << (shift + 8).
    static let bold: UInt32 = 1 << (13 + 8)
    static let reverse: UInt32 = 1 << (10 + 8)
    static let underline: UInt32 = 1 << (9 + 8)
    static let colorShift: UInt32 = 8

    // Mouse, NCURSES_MOUSE_VERSION 2: NCURSES_MOUSE_MASK(button, mask) = mask << ((button - 1) * 5).
    static func mouseMask(button: UInt32, _ mask: UInt32) -> UInt32 { mask << ((button - 1) * 5) }
    static let released: UInt32 = 0o1
    static let pressed: UInt32 = 0o2
    static let clicked: UInt32 = 0o4
    static let doubleClicked: UInt32 = 0o10
    static let button1Pressed = mouseMask(button: 1, pressed)
    static let button1Clicked = mouseMask(button: 1, clicked)
    static let button1DoubleClicked = mouseMask(button: 1, doubleClicked)
    static let button1Released = mouseMask(button: 1, released)
    /// The wheel: button 4 up, button 5 down.
    static let wheelUp = mouseMask(button: 4, pressed)
    static let wheelDown = mouseMask(button: 5, pressed)
    static let wanted = button1Pressed | button1Clicked | button1DoubleClicked | button1Released | wheelUp | wheelDown
}
