import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A small process (`tenops node-reaper`) that outlives its node only to end the node's pods.
///
/// A node's pods lead sessions of their own, so they survive the node: after `kill -9` or a
/// crash of `tenops local`, PostgreSQL servers would keep running, holding their ports and data
/// directories, until the node starts again on the same directory (`ProcessRecords`). The
/// reaper's stdin is the read end of a pipe whose only write end the node holds (close-on-exec,
/// so no pod inherits it). However the node ends, the kernel closes that end; the reaper reads
/// end-of-file and kills what the records under the pods directory name. After a clean stop the
/// records are gone already, and it just exits.
///
/// It runs from the `tenops` executable beside the running one (the same build, as for pods);
/// without one there is no reaper, and a node started again still ends its leftovers.
final class NodeReaper: Sendable {
    private let lifeline: Mutex<Int32>

    private init(lifeline: Int32) { self.lifeline = Mutex(lifeline) }

    static let commandName = "node-reaper"

    /// Starts a reaper for the node whose state is under `layout`, or fails (saying why) when
    /// there is no `tenops` to run it with.
    static func start(layout: NodeLayout, searchPath: String = ContainerCommand.executableDirectory) -> Result<NodeReaper, SpawnError> {
        guard let executable = ContainerCommand.resolve("tenops", searchPath: searchPath, workingDirectory: "/") else {
            return .failure(.failed("no tenops executable in \(searchPath)"))
        }
        var ends: [Int32] = [-1, -1]
        // Close-on-exec for both ends (pipe2 is not in Swift's Glibc module); the spawner also
        // closes every descriptor above stderr in the processes it starts.
        guard pipe(&ends) == 0 else { return .failure(.failed("cannot create a pipe: errno \(errno)")) }
        for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let request = SpawnRequest(
            executable: executable, arguments: [executable, commandName, "--node-directory", layout.root],
            environment: [], workingDirectory: "/", outputPath: layout.reaperLogFile, standardInput: ends[0])
        do {
            // The spawner's watcher reaps it when it exits; nothing here waits for that.
            _ = try ProcessSpawner.spawn(request) { _ in }
            close(ends[0])
            return .success(NodeReaper(lifeline: ends[1]))
        } catch {
            close(ends[0])
            close(ends[1])
            return .failure(error)
        }
    }

    /// Lets the reaper go: it reads end-of-file, finds no records left and exits. Call once the
    /// node's pods are stopped.
    func release() {
        lifeline.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// For a node starting on `layout`: waits (at most `timeout`) for a reaper of a previous
    /// run that is still at work, so that it cannot remove the records of this run's pods.
    static func waitForPrevious(layout: NodeLayout, timeout: Duration = .seconds(10)) async {
        let fd = open(layout.reaperLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let deadline = ContinuousClock.now + timeout
        while flock(fd, LOCK_EX | LOCK_NB) != 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The reaper's side: holds the node directory's reaper lock, blocks until the node's end of
    /// the lifeline closes (`lifeline` reads end-of-file), then kills what the records name.
    /// Returns how many processes it killed. It blocks its thread in `read`: in the reaper's own
    /// process nothing else runs.
    static func waitForNodeThenReap(layout: NodeLayout, lifeline: Int32) async -> Int {
        let lock = open(layout.reaperLockFile, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if lock >= 0 { _ = flock(lock, LOCK_EX) }
        defer { if lock >= 0 { close(lock) } }
        var byte: UInt8 = 0
        while true {
            let count = read(lifeline, &byte, 1)
            if count == 0 || (count < 0 && errno != EINTR) { break }
        }
        return await ProcessRecords.killLeftovers(podsDirectory: layout.podsDirectory)
    }
}

/// `tenops node-reaper`'s entry point (see `NodeReaper`).
public enum NodeReaperCommand {
    public static let name = NodeReaper.commandName

    /// Waits on stdin for the node to end, then kills its pods' leftover processes; returns how
    /// many it killed.
    public static func run(nodeDirectory: String) async -> Int {
        await NodeReaper.waitForNodeThenReap(layout: NodeLayout(root: nodeDirectory), lifeline: 0)
    }
}
