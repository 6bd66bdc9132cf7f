import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where a node keeps everything, under its state directory:
///
/// ```
/// DIR/kubelet.port              the kubelet endpoint's port, reused after a restart
/// DIR/pod-addresses.json        pod IP allocations (see PodAddressPool)
/// DIR/pki/                      the node's own CA and the kubelet serving certificate
/// DIR/pods/NS_POD/volumes/VOL/  emptyDir, secret, configMap, projected and downwardAPI volumes
/// DIR/pods/NS_POD/logs/C/N.log  stdout and stderr of container C's instance N (N = restartCount)
/// DIR/pods/NS_POD/processes/C   "PID STARTTIME" of container C's running process group
/// DIR/pvc/NS/CLAIM/             a PersistentVolumeClaim's data; kept when pods come and go
/// DIR/reaper.lock, reaper.log   held and written by the node's reaper (see NodeReaper)
/// ```
///
/// Every name that becomes a path component is checked to be a DNS-1123 name first, so a
/// hostile name never leads outside the directory.
struct NodeLayout: Sendable {
    let root: String

    var portFile: String { "\(root)/kubelet.port" }
    var addressFile: String { "\(root)/pod-addresses.json" }
    var pkiDirectory: String { "\(root)/pki" }
    var podsDirectory: String { "\(root)/pods" }
    var claimsDirectory: String { "\(root)/pvc" }
    var reaperLockFile: String { "\(root)/reaper.lock" }
    var reaperLogFile: String { "\(root)/reaper.log" }

    /// True for names that are safe as one path component: DNS-1123 subdomains.
    static func isSafeName(_ name: String) -> Bool { ObjectLifecycle.isValidName(name) }

    /// The directory of a pod; nil for names that are not DNS-1123 names. Namespaces and pod
    /// names cannot hold `_`, so `NS_POD` is unambiguous.
    func podDirectory(namespace: String, pod: String) -> String? {
        guard Self.isSafeName(namespace), Self.isSafeName(pod) else { return nil }
        return "\(podsDirectory)/\(namespace)_\(pod)"
    }

    func volumeDirectory(pod: String, volume: String) -> String? {
        Self.isSafeName(volume) ? "\(pod)/volumes/\(volume)" : nil
    }

    func logDirectory(pod: String, container: String) -> String? {
        Self.isSafeName(container) ? "\(pod)/logs/\(container)" : nil
    }

    func processRecord(pod: String, container: String) -> String { "\(pod)/processes/\(container)" }

    func claimDirectory(namespace: String, claim: String) -> String? {
        guard Self.isSafeName(namespace), Self.isSafeName(claim) else { return nil }
        return "\(claimsDirectory)/\(namespace)/\(claim)"
    }

    /// Creates a directory and its parents with `mode` (not narrowed by the umask), so that a
    /// server that switches to another user (PostgreSQL as `postgres`) can still use it.
    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, mode)
    }
}

/// The process groups a node started, recorded in its directory so that a node that died
/// (kill -9, a crash) can end them when it starts again.
enum ProcessRecords {
    static func write(_ leader: GroupLeader, to path: String) {
        try? NodeLayout.makeDirectory((path as NSString).deletingLastPathComponent)
        try? "\(leader.pid) \(leader.startTime)\n".write(toFile: path, atomically: true, encoding: .utf8)
    }

    static func remove(_ path: String) { unlink(path) }

    /// Kills every process left from the records under `podsDirectory` and removes the records.
    /// Returns how many processes were signalled.
    ///
    /// A record names a session (the container's process leads one); a process belongs to it
    /// when its session ID matches and it started no earlier than the recorded leader, so a
    /// recycled PID in an unrelated session is left alone.
    @discardableResult
    static func killLeftovers(podsDirectory: String) async -> Int {
        let fileManager = FileManager.default
        var sessions: [(session: Int32, since: UInt64)] = []
        var records: [String] = []
        for pod in (try? fileManager.contentsOfDirectory(atPath: podsDirectory)) ?? [] {
            let directory = "\(podsDirectory)/\(pod)/processes"
            for name in (try? fileManager.contentsOfDirectory(atPath: directory)) ?? [] {
                let path = "\(directory)/\(name)"
                records.append(path)
                let fields = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace)
                if fields.count == 2, let pid = Int32(fields[0]), pid > 1, let since = UInt64(fields[1]) {
                    sessions.append((pid, since))
                }
            }
        }
        var victims: [pid_t] = []
        if !sessions.isEmpty {
            for entry in (try? fileManager.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = pid_t(entry), let stat = ProcStat.read(pid) else { continue }
                if sessions.contains(where: { $0.session == stat.session && stat.startTime >= $0.since }) { victims.append(pid) }
            }
        }
        for pid in victims { kill(pid, SIGKILL) }
        // They are not our children: wait (briefly) for the kernel to take them away.
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline, victims.contains(where: { ProcStat.read($0)?.isRunning == true }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        records.forEach(remove)
        return victims.count
    }
}
