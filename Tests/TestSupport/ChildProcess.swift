import Foundation

/// What a finished child process left behind.
public struct ProcessOutput: Sendable {
    public let status: Int32
    public let out: String
    public let err: String
    /// True when the process was killed because it outlived its time limit.
    public let timedOut: Bool
}

/// Runs a child process without blocking a thread of the cooperative pool.
///
/// Output goes to files rather than pipes, and the exit is awaited through Foundation's
/// termination handler, so a test that waits for `kubectl` never holds one of the (on CI, two)
/// cooperative threads that the in-process server it talks to needs. A process that outlives
/// `timeout` is killed by PID with SIGKILL and reported with `timedOut`.
public enum ChildProcess {
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil,
        input: String? = nil,
        timeout: Duration = .seconds(60)
    ) async throws -> ProcessOutput {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tenops-child-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let outPath = scratch + "/out", errPath = scratch + "/err", inPath = scratch + "/in"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        FileManager.default.createFile(atPath: inPath, contents: Data((input ?? "").utf8))
        guard let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath),
            let stdin = FileHandle(forReadingAtPath: inPath)
        else { throw CocoaError(.fileWriteUnknown) }
        defer {
            try? out.close()
            try? err.close()
            try? stdin.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdin
        let watchdog = Watchdog()
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { finished in
                watchdog.finish()
                continuation.resume(returning: finished.terminationStatus)
            }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
                return
            }
            let pid = process.processIdentifier
            Thread.detachNewThread {
                let deadline = ContinuousClock.now + timeout
                while ContinuousClock.now < deadline {
                    if watchdog.finished { return }
                    usleep(20_000)
                }
                watchdog.killIfRunning(pid)
            }
        }
        let timedOut = watchdog.killed
        return ProcessOutput(
            status: status,
            out: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            err: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
            timedOut: timedOut)
    }

    /// Whether the process has exited and whether the watchdog killed it. Both change under one
    /// lock, so the watchdog never signals a PID after its process was reaped.
    private final class Watchdog: @unchecked Sendable {
        private let lock = NSLock()
        private var wasKilled = false
        private var done = false
        var killed: Bool { lock.withLock { wasKilled } }
        var finished: Bool { lock.withLock { done } }
        func finish() { lock.withLock { done = true } }
        func killIfRunning(_ pid: pid_t) {
            lock.withLock {
                guard !done else { return }
                wasKilled = true
                kill(pid, SIGKILL)
            }
        }
    }
}

extension Process {
    /// Waits for the process to exit without holding a thread; false if it is still running
    /// after `timeout`.
    public func exited(within timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}
