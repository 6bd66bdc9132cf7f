import CNcurses
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The terminal, owned by one dedicated thread (never the cooperative pool): curses is not
/// thread-safe, and a blocking `poll` on the keyboard must not hold a thread that async code needs.
///
/// The thread sleeps in `poll` on three descriptors: the keyboard, a wake-up pipe (a new grid or
/// theme, or stop) and the SIGWINCH pipe. Nothing wakes it when nothing happens, so an idle
/// console costs nothing. It writes only the cells that differ from the grid it wrote last, then
/// refreshes once.
public final class TerminalBackend: Sendable {
    public struct Options: Sendable {
        /// Where swift-log and any stray print go while curses holds the terminal: fds 1 and 2
        /// point there until `stop`. nil leaves them alone (a test driving a pty of its own).
        public var outputRedirect: String?
        /// The environment that decides colours (`NO_COLOR`, `TERM`).
        public var environment: [String: String]
        /// A file that gets one line per flush (`TENOPS_CONSOLE_TRACE`): the benchmark's
        /// instrument for redraw times and key-to-screen latency.
        public var tracePath: String?

        public init(outputRedirect: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                    tracePath: String? = nil) {
            self.outputRedirect = outputRedirect
            self.environment = environment
            self.tracePath = tracePath
        }
    }

    /// A grid to show, and what the trace says of it.
    public struct Frame: Sendable {
        public var grid: CellGrid
        /// Microseconds the views took to render it.
        public var renderMicroseconds: Double
        /// Why it was drawn (`key`, `snapshot`, `logs`, `tick`, `resize`), for the trace; the
        /// causes of frames it replaced before they reached the screen are joined with `+`.
        public var cause: String

        public init(grid: CellGrid, renderMicroseconds: Double = 0, cause: String = "") {
            self.grid = grid
            self.renderMicroseconds = renderMicroseconds
            self.cause = cause
        }

        /// `later`'s cause after it replaced `earlier` in the mailbox: each cause once, the
        /// earliest first, so that a key whose frame was overtaken still shows in the trace.
        static func joined(_ earlier: String, _ later: String) -> String {
            var causes: [Substring] = []
            for cause in (earlier.split(separator: "+") + later.split(separator: "+")) where !causes.contains(cause) {
                causes.append(cause)
            }
            return causes.joined(separator: "+")
        }
    }

    struct Mailbox {
        var frame: Frame?
        var theme: Theme?
        var stopping = false
    }

    public let options: Options
    /// Keys, mouse events and resizes, in order.
    public let input: AsyncStream<TerminalInput>
    private let inputContinuation: AsyncStream<TerminalInput>.Continuation
    private let mailbox = Mutex(Mailbox())
    private let wakePipe: (read: Int32, write: Int32)
    private let resizePipe: (read: Int32, write: Int32)
    private let finished = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    private let initialTheme: Theme

    public init(theme: Theme, options: Options = Options()) throws {
        self.options = options
        self.initialTheme = theme
        (input, inputContinuation) = AsyncStream<TerminalInput>.makeStream()
        wakePipe = try Self.makePipe()
        resizePipe = try Self.makePipe()
    }

    deinit {
        for fd in [wakePipe.read, wakePipe.write, resizePipe.read, resizePipe.write] { close(fd) }
    }

    /// Takes the terminal: starts the thread and returns the screen's size once curses runs.
    public func start() async throws -> (width: Int, height: Int) {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<(width: Int, height: Int), any Error>) in
            let thread = Thread { [self] in
                let session = TerminalSession(backend: self, theme: initialTheme)
                switch session.setUp() {
                case .success(let size):
                    continuation.resume(returning: size)
                    session.run()
                    session.tearDown()
                case .failure(let error):
                    continuation.resume(throwing: error)
                }
                inputContinuation.finish()
                let waiters = finished.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.done = true
                    defer { state.waiters = [] }
                    return state.waiters
                }
                waiters.forEach { $0.resume() }
            }
            thread.name = "tenops-terminal"
            thread.start()
        }
    }

    /// Shows `frame` at the next wake-up; a frame not drawn yet is replaced, never queued.
    public func draw(_ frame: Frame) {
        mailbox.withLock { mailbox in
            var latest = frame
            if let pending = mailbox.frame { latest.cause = Frame.joined(pending.cause, frame.cause) }
            mailbox.frame = latest
        }
        wake()
    }

    public func setTheme(_ theme: Theme) {
        mailbox.withLock { $0.theme = theme }
        wake()
    }

    /// Gives the terminal back (endwin, fds restored) and waits until it has.
    public func stop() async {
        mailbox.withLock { $0.stopping = true }
        wake()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = finished.withLock { state -> Bool in
                if state.done { return true }
                state.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: For the terminal thread

    func take() -> Mailbox {
        mailbox.withLock { box in
            defer {
                box.frame = nil
                box.theme = nil
            }
            return box
        }
    }

    func emit(_ event: TerminalInput) { inputContinuation.yield(event) }

    var wakeReadEnd: Int32 { wakePipe.read }
    var resizeReadEnd: Int32 { resizePipe.read }
    var resizeWriteEnd: Int32 { resizePipe.write }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakePipe.write, &byte, 1)
    }

    static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TerminalError("cannot create a pipe: errno \(errno)") }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return (fds[0], fds[1])
    }
}

public struct TerminalError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Everything that belongs to the terminal thread: curses' screen, the colour pairs and the grid
/// last written. Never leaves that thread.
final class TerminalSession {
    private let backend: TerminalBackend
    private var theme: Theme
    private var screen: OpaquePointer?
    private var terminalOutput: UnsafeMutablePointer<FILE>?
    private var terminalInput: UnsafeMutablePointer<FILE>?
    private var inputFD: Int32 = STDIN_FILENO
    private var outputFD: Int32 = STDOUT_FILENO
    private var written: CellGrid?
    private var blank: CellGrid?
    /// One span's characters for curses, kept between frames.
    private var buffer: [wchar_t] = []
    /// The spans of the frame being drawn, kept between frames.
    private var runs: [GridSpan] = []
    private var styles: [Role: UInt32] = [:]
    private var width = 80
    private var height = 24
    private var trace: FileHandle?
    private var traceLine = TraceLine()

    init(backend: TerminalBackend, theme: Theme) {
        self.backend = backend
        self.theme = theme
    }

    func setUp() -> Result<(width: Int, height: Int), TerminalError> {
        setlocale(LC_ALL, "")
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            return .failure(TerminalError("the console needs a terminal on stdin and stdout"))
        }
        fflush(nil)
        // curses writes to its own copy of the terminal, so that fds 1 and 2 can point at the log.
        outputFD = dup(STDOUT_FILENO)
        inputFD = dup(STDIN_FILENO)
        terminalOutput = fdopen(outputFD, "w")
        terminalInput = fdopen(inputFD, "r")
        TerminalGuard.installResizeHandler(pipe: backend.resizeWriteEnd)
        set_escdelay(25)
        guard let screen = newterm(nil, terminalOutput, terminalInput) else {
            TerminalGuard.removeResizeHandler()
            return .failure(TerminalError("curses cannot drive this terminal (TERM=\(backend.options.environment["TERM"] ?? "unset"))"))
        }
        self.screen = screen
        set_term(screen)
        TerminalGuard.active = true
        redirectOutput()
        TerminalGuard.installCrashHandlers()
        cbreak()
        noecho()
        nonl()
        keypad(tenops_stdscr(), true)
        nodelay(tenops_stdscr(), true)
        // No look at the keyboard in the middle of a refresh: curses would poll it line by line,
        // and put off the rest of the frame when a key is waiting.
        typeahead(-1)
        curs_set(0)
        mouseinterval(0)
        mousemask(mmask_t(CursesConstant.wanted), nil)
        applyTheme()
        width = Int(getmaxx(tenops_stdscr()))
        height = Int(getmaxy(tenops_stdscr()))
        if let path = backend.options.tracePath {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            trace = FileHandle(forWritingAtPath: path)
            trace?.seekToEndOfFile()
        }
        return .success((width, height))
    }

    func tearDown() {
        if TerminalGuard.active {
            TerminalGuard.active = false
            endwin()
        }
        if let screen { delscreen(screen) }
        TerminalGuard.removeCrashHandlers()
        TerminalGuard.removeResizeHandler()
        restoreOutput()
        if let terminalOutput { fclose(terminalOutput) }
        if let terminalInput { fclose(terminalInput) }
        try? trace?.close()
    }

    /// Sleeps until a key, a wake-up or a resize; returns when told to stop.
    func run() {
        var fds = [
            pollfd(fd: inputFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: backend.wakeReadEnd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: backend.resizeReadEnd, events: Int16(POLLIN), revents: 0),
        ]
        while true {
            for index in fds.indices { fds[index].revents = 0 }
            let ready = poll(&fds, nfds_t(fds.count), -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[2].revents != 0 {
                drain(backend.resizeReadEnd)
                resize()
            }
            if fds[1].revents != 0 {
                drain(backend.wakeReadEnd)
                let mail = backend.take()
                if mail.stopping { return }
                if let theme = mail.theme {
                    self.theme = theme
                    applyTheme()
                    written = nil
                }
                if let frame = mail.frame { draw(frame) }
            }
            if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                if fds[0].revents & Int16(POLLHUP | POLLERR) != 0 && fds[0].revents & Int16(POLLIN) == 0 {
                    // The terminal is gone (its window closed): nothing more will come.
                    backend.emit(.character("\u{04}"))
                    fds[0].fd = -1
                } else {
                    readKeys()
                }
            }
        }
    }

    // MARK: Input

    /// Reads what curses has, at most a screenful of keys per wake-up (a terminal that never
    /// stops sending must not starve the drawing).
    private func readKeys() {
        var character: wint_t = 0
        for _ in 0..<256 {
            let result = wget_wch(tenops_stdscr(), &character)
            if result == ERR { return }
            if result == KEY_CODE_YES {
                let code = Int32(character)
                if code == KEY_RESIZE {
                    // curses has resized already (resizeterm pushed this key): only report it.
                    reportSize()
                } else if code == KEY_MOUSE {
                    var event = MEVENT()
                    if getmouse(&event) == OK {
                        backend.emit(.mouse(x: Int(event.x), y: Int(event.y), buttons: UInt32(truncatingIfNeeded: event.bstate)))
                    }
                } else {
                    backend.emit(.keyCode(code))
                }
            } else if let scalar = Unicode.Scalar(UInt32(character)) {
                backend.emit(.character(Character(scalar)))
            }
        }
    }

    /// SIGWINCH: tells curses the terminal's new size (which also queues a KEY_RESIZE).
    private func resize() {
        var size = winsize()
        if ioctl(outputFD, UInt(TIOCGWINSZ), &size) == 0, size.ws_row > 0, size.ws_col > 0 {
            resizeterm(Int32(size.ws_row), Int32(size.ws_col))
        }
        reportSize()
    }

    /// A size other than the last reported goes to the loop, and the next frame is drawn whole.
    private func reportSize() {
        let newWidth = Int(getmaxx(tenops_stdscr())), newHeight = Int(getmaxy(tenops_stdscr()))
        guard newWidth != width || newHeight != height else { return }
        written = nil
        width = newWidth
        height = newHeight
        backend.emit(.resize(width: width, height: height))
    }

    private func drain(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(fd, &buffer, buffer.count) > 0 {}
    }

    // MARK: Output

    private func draw(_ frame: TerminalBackend.Frame) {
        let started = ContinuousClock.now
        let full = written == nil || written?.width != frame.grid.width || written?.height != frame.grid.height
        if full { wclear(tenops_stdscr()) }
        // After wclear curses holds blanks in the text role's background: only the other cells
        // need writing.
        GridDiff.spans(from: full ? blankGrid(width: frame.grid.width, height: frame.grid.height) : written, to: frame.grid, into: &runs)
        let diffed = ContinuousClock.now
        let cells = frame.grid.cells
        for run in runs where run.y < height && run.x < width {
            buffer.removeAll(keepingCapacity: true)
            let start = run.y * frame.grid.width + run.x
            for cell in cells[start..<start + min(run.count, width - run.x)] { buffer.append(Self.wide(cell.character)) }
            var attributes = styles[run.role] ?? 0
            if run.bold { attributes |= CursesConstant.bold }
            attrset(Int32(bitPattern: attributes))
            buffer.withUnsafeBufferPointer { pointer in
                _ = mvaddnwstr(Int32(run.y), Int32(run.x), pointer.baseAddress, Int32(pointer.count))
            }
        }
        attrset(0)
        let queued = ContinuousClock.now
        if !runs.isEmpty || full { wrefresh(tenops_stdscr()) }
        written = frame.grid
        if let trace {
            let flushed = ContinuousClock.now
            func micros(_ from: ContinuousClock.Instant, _ to: ContinuousClock.Instant) -> Double {
                let elapsed = (to - from).components
                return Double(elapsed.attoseconds) / 1e12 + Double(elapsed.seconds) * 1e6
            }
            // flush_us: all of it; diff_us, curses_us (the cells into curses), refresh_us (curses to the terminal).
            traceLine.start("frame")
            traceLine.field("time", Date().timeIntervalSince1970, decimals: 6)
            traceLine.field("cause", frame.cause)
            traceLine.field("render_us", frame.renderMicroseconds, decimals: 1)
            traceLine.field("flush_us", micros(started, flushed), decimals: 1)
            traceLine.field("diff_us", micros(started, diffed), decimals: 1)
            traceLine.field("curses_us", micros(diffed, queued), decimals: 1)
            traceLine.field("refresh_us", micros(queued, flushed), decimals: 1)
            traceLine.field("cells", GridDiff.cellCount(runs))
            traceLine.field("full", full ? 1 : 0)
            traceLine.end()
            traceLine.bytes.withUnsafeBytes { line in
                var done = 0
                while done < line.count {
                    let count = Glibc.write(trace.fileDescriptor, line.baseAddress! + done, line.count - done)
                    guard count > 0 else { break }
                    done += count
                }
            }
        }
    }

    /// A grid of blanks the size of the screen, as curses holds it right after `wclear`; kept
    /// until the size changes.
    private func blankGrid(width: Int, height: Int) -> CellGrid {
        if let blank, blank.width == width, blank.height == height { return blank }
        let grid = CellGrid(width: width, height: height)
        blank = grid
        return grid
    }

    /// One cell's character for curses: its first scalar; a control character becomes a space.
    static func wide(_ character: Character) -> wchar_t {
        if let ascii = character.asciiValue { return ascii >= 0x20 && ascii != 0x7F ? wchar_t(ascii) : 0x20 }
        guard let scalar = character.unicodeScalars.first, scalar.value >= 0x20, scalar.value != 0x7F else { return 0x20 }
        return wchar_t(bitPattern: scalar.value)
    }

    /// One colour pair per distinct pair of colours the theme uses, resolved for what this
    /// terminal shows.
    private func applyTheme() {
        var colors = 0
        var terminalDefaults = true
        let environment = backend.options.environment
        let noColor = (environment["NO_COLOR"].map { !$0.isEmpty } ?? false)
        if !noColor && has_colors() {
            start_color()
            terminalDefaults = use_default_colors() == OK
            colors = Int(tenops_colors())
        }
        let support = ColorSupport.detect(environment: environment, colors: colors)
        let resolved = theme.resolved(for: support)
        var pairs: [ResolvedStyle: Int16] = [:]
        styles = [:]
        for role in Role.allCases {
            let style = resolved[role]
            var attributes: UInt32 = 0
            if style.attributes.contains(.bold) { attributes |= CursesConstant.bold }
            if style.attributes.contains(.reverse) { attributes |= CursesConstant.reverse }
            if style.attributes.contains(.underline) { attributes |= CursesConstant.underline }
            if support != .none, style.foreground >= 0 || style.background >= 0 {
                let key = ResolvedStyle(foreground: style.foreground, background: style.background, attributes: [])
                let pair: Int16
                if let known = pairs[key] {
                    pair = known
                } else {
                    pair = Int16(pairs.count + 1)
                    pairs[key] = pair
                    // Without the terminal's own colours (-1), white on black stands in for them.
                    let foreground = style.foreground < 0 && !terminalDefaults ? 7 : style.foreground
                    let background = style.background < 0 && !terminalDefaults ? 0 : style.background
                    init_pair(pair, Int16(foreground), Int16(background))
                }
                attributes |= UInt32(pair) << CursesConstant.colorShift
            }
            styles[role] = attributes
        }
        // The background of blank space: the text role's.
        bkgdset(chtype(styles[.text] ?? 0) & ~chtype(0xFF))
    }

    // MARK: Output redirection

    private func redirectOutput() {
        guard let path = backend.options.outputRedirect else { return }
        let log = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { return }
        fflush(nil)
        TerminalGuard.savedOutput = dup(STDOUT_FILENO)
        TerminalGuard.savedError = dup(STDERR_FILENO)
        dup2(log, STDOUT_FILENO)
        dup2(log, STDERR_FILENO)
        close(log)
    }

    private func restoreOutput() {
        fflush(nil)
        if TerminalGuard.savedOutput >= 0 {
            dup2(TerminalGuard.savedOutput, STDOUT_FILENO)
            close(TerminalGuard.savedOutput)
            TerminalGuard.savedOutput = -1
        }
        if TerminalGuard.savedError >= 0 {
            dup2(TerminalGuard.savedError, STDERR_FILENO)
            close(TerminalGuard.savedError)
            TerminalGuard.savedError = -1
        }
    }
}
