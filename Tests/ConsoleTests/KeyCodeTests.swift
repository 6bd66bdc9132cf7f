import CNcurses
import Testing

@testable import Console

@Suite("Key codes: terminal input to keys", .timeLimit(.minutes(5)))
struct KeyCodeTests {
    @Test("characters", arguments: [
        (Character("q"), Key.char("q") as Key?), ("S", .char("S")), (":", .char(":")), ("é", .char("é")), (" ", .char(" ")),
        ("\r", .enter), ("\n", .enter), ("\t", .tab), ("\u{1B}", .escape), ("\u{7F}", .backspace), ("\u{08}", .backspace),
        ("\u{01}", nil), ("\u{00}", nil),
    ])
    func characters(character: Character, expected: Key?) {
        #expect(KeyCodes.key(for: .character(character), width: 80, height: 24) == expected)
    }

    @Test("ncurses key codes", arguments: [
        (KEY_UP, Key.up as Key?), (KEY_DOWN, .down), (KEY_LEFT, .left), (KEY_RIGHT, .right),
        (KEY_PPAGE, .pageUp), (KEY_NPAGE, .pageDown), (KEY_HOME, .home), (KEY_END, .end),
        (KEY_BTAB, .backTab), (KEY_ENTER, .enter), (KEY_BACKSPACE, .backspace),
        (KEY_F0 + 1, nil), (KEY_DC, nil),
    ])
    func codes(code: Int32, expected: Key?) {
        #expect(KeyCodes.key(for: .keyCode(code), width: 80, height: 24) == expected)
    }

    @Test("mouse: the first button selects at the cell, the wheel scrolls, releases are ignored", arguments: [
        (CursesConstant.button1Pressed, Key.click(x: 7, y: 5, width: 120, height: 40) as Key?),
        (CursesConstant.button1Clicked, .click(x: 7, y: 5, width: 120, height: 40)),
        (CursesConstant.button1Released, nil),
        (CursesConstant.wheelUp, .up),
        (CursesConstant.wheelDown, .down),
        (CursesConstant.mouseMask(button: 3, CursesConstant.pressed), nil),
    ])
    func mouse(buttons: UInt32, expected: Key?) {
        #expect(KeyCodes.key(for: .mouse(x: 7, y: 5, buttons: buttons), width: 120, height: 40) == expected)
    }

    @Test("a resize carries the new size")
    func resize() {
        #expect(KeyCodes.key(for: .resize(width: 100, height: 30), width: 80, height: 24) == .resize(width: 100, height: 30))
    }

    @Test("the mouse masks agree with ncurses' own numbering (NCURSES_MOUSE_VERSION 2)")
    func masks() {
        #expect(CursesConstant.button1Released == 0o1)
        #expect(CursesConstant.button1Pressed == 0o2)
        #expect(CursesConstant.button1Clicked == 0o4)
        #expect(CursesConstant.wheelUp == 0o2 << 15)
        #expect(CursesConstant.wheelDown == 0o2 << 20)
        #expect(NCURSES_MOUSE_VERSION == 2)
    }
}
