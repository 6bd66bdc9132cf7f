import CNcurses
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The process-wide state that signal handlers need: they cannot capture anything, so it lives
/// in globals written before the handlers are installed and only read by them.
enum TerminalGuard {
    /// The write end of the pipe SIGWINCH wakes the terminal thread through.
    nonisolated(unsafe) static var resizePipe: Int32 = -1
    /// The terminal's own stdout and stderr, while fds 1 and 2 point at the log file.
    nonisolated(unsafe) static var savedOutput: Int32 = -1
    nonisolated(unsafe) static var savedError: Int32 = -1
    /// Whether curses holds the terminal (a crash must give it back).
    nonisolated(unsafe) static var active = false
    nonisolated(unsafe) static var previousActions: [Int32: sigaction] = [:]

    static let crashSignals: [Int32] = [SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGTRAP]

    /// SIGWINCH writes a byte into the pipe; installed before curses starts, so that curses
    /// keeps it rather than its own handler (which only a thread inside `wgetch` would notice).
    static func installResizeHandler(pipe: Int32) {
        resizePipe = pipe
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            var byte: UInt8 = 1
            _ = write(TerminalGuard.resizePipe, &byte, 1)
        }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(SIGWINCH, &action, nil)
    }

    static func removeResizeHandler() {
        signal(SIGWINCH, SIG_DFL)
    }

    /// On a crash: leave curses, give fds 1 and 2 back to the terminal, and let the signal do
    /// what it did before (the Swift runtime's backtrace, a core dump) on a restored terminal.
    static func installCrashHandlers() {
        for number in crashSignals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                TerminalGuard.restoreAfterCrash()
                if var previous = TerminalGuard.previousActions[signal] {
                    sigaction(signal, &previous, nil)
                } else {
                    Glibc.signal(signal, SIG_DFL)
                }
                raise(signal)
            }
            action.sa_flags = 0
            sigemptyset(&action.sa_mask)
            var previous = sigaction()
            sigaction(number, &action, &previous)
            previousActions[number] = previous
        }
    }

    static func removeCrashHandlers() {
        for number in crashSignals {
            if var previous = previousActions[number] { sigaction(number, &previous, nil) }
        }
    }

    /// Called from a signal handler: only what must happen, once.
    static func restoreAfterCrash() {
        if active {
            active = false
            endwin()
        }
        if savedOutput >= 0 { dup2(savedOutput, STDOUT_FILENO) }
        if savedError >= 0 { dup2(savedError, STDERR_FILENO) }
    }
}
