import Foundation
import KubeAPI
import Synchronization

/// One durable change: an object written or removed at a resourceVersion.
struct StoredMutation: Sendable {
    enum Operation: String, Sendable { case put, delete }
    var resourceVersion: Int64
    var operation: Operation
    var resource: String
    var namespace: String
    var name: String
    /// The object after a put; the last state before a delete.
    var object: JSONObject
}

/// The store's durability: a snapshot plus an append-only log of every mutation since.
///
/// A mutation is written to the log with write(2) before it is acknowledged, so a `kill -9` of
/// the server never loses an acknowledged write (the kernel holds the bytes). The log is synced
/// to disk on a short timer for machine crashes. A torn last line (the process died inside a
/// write, before the acknowledgement) is ignored on replay. When the log grows past
/// `compactionBytes`, a new snapshot is written to a temporary file, synced and renamed into
/// place, and the log starts over.
final class WriteAheadLog: @unchecked Sendable {
    let directory: String
    // Written under the storage's lock; `dirty` is also read by the sync thread.
    private var logDescriptor: Int32 = -1
    private var logBytes = 0
    private let dirty = Mutex(false)
    let compactionBytes: Int

    var snapshotPath: String { "\(directory)/snapshot.jsonl" }
    var logPath: String { "\(directory)/wal.jsonl" }

    init(directory: String, compactionBytes: Int = 64 << 20) throws {
        self.directory = directory
        self.compactionBytes = compactionBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit { if logDescriptor >= 0 { close(logDescriptor) } }

    struct Recovered {
        var objects: [StoredMutation] = []  // live objects from the snapshot and log, latest state
        var logged: [StoredMutation] = []   // the log's mutations in order, for watch history
        var resourceVersion: Int64 = 0
        var tornTail = false
    }

    /// Reads the snapshot and the log. Call once, before `open`.
    func recover() throws -> Recovered {
        var recovered = Recovered()
        var live: [String: StoredMutation] = [:]
        func key(_ m: StoredMutation) -> String { "\(m.resource)\u{0}\(m.namespace)\u{0}\(m.name)" }

        if let snapshot = FileManager.default.contents(atPath: snapshotPath) {
            try Self.forEachLine(snapshot) { line, isLast in
                guard let mutation = Self.decode(line) else {
                    throw LocalClusterError.corruptState("\(snapshotPath): an unreadable record")
                }
                recovered.resourceVersion = max(recovered.resourceVersion, mutation.resourceVersion)
                if mutation.operation == .put { live[key(mutation)] = mutation }
            }
        }
        if var log = FileManager.default.contents(atPath: logPath) {
            // Only records that end with their newline were completely written.
            if let last = log.lastIndex(of: 0x0A) {
                if last != log.index(before: log.endIndex) { recovered.tornTail = true }
                log = log.prefix(through: last)
            } else if !log.isEmpty {
                recovered.tornTail = true
                log = Data()
            }
            try Self.forEachLine(log) { line, isLast in
                guard let mutation = Self.decode(line) else {
                    if isLast { recovered.tornTail = true; return }
                    throw LocalClusterError.corruptState("\(logPath): an unreadable record before the end")
                }
                recovered.resourceVersion = max(recovered.resourceVersion, mutation.resourceVersion)
                recovered.logged.append(mutation)
                switch mutation.operation {
                case .put: live[key(mutation)] = mutation
                case .delete: live[key(mutation)] = nil
                }
            }
        }
        recovered.objects = live.values.sorted { $0.resourceVersion < $1.resourceVersion }
        return recovered
    }

    /// Opens the log for appending.
    func open() throws {
        let fd = Foundation.open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalClusterError.io("\(logPath): \(String(cString: strerror(errno)))") }
        logDescriptor = fd
        var info = stat()
        fstat(fd, &info)
        logBytes = Int(info.st_size)
    }

    /// Rewrites the log without a torn last line.
    func dropTornTail() throws {
        guard let data = FileManager.default.contents(atPath: logPath) else { return }
        guard let lastNewline = data.lastIndex(of: 0x0A) else {
            try Data().write(to: URL(fileURLWithPath: logPath))
            return
        }
        try data.prefix(through: lastNewline).write(to: URL(fileURLWithPath: logPath), options: .atomic)
    }

    /// Appends one mutation. Returns once the bytes are in the kernel.
    func append(_ mutation: StoredMutation, objectJSON: [UInt8]) throws {
        var line: [UInt8] = []
        line.reserveCapacity(objectJSON.count + 160)
        line.append(contentsOf: "{\"rv\":\(mutation.resourceVersion),\"op\":\"\(mutation.operation.rawValue)\",\"r\":".utf8)
        JSONWriter.writeString(mutation.resource, into: &line)
        line.append(contentsOf: ",\"ns\":".utf8)
        JSONWriter.writeString(mutation.namespace, into: &line)
        line.append(contentsOf: ",\"n\":".utf8)
        JSONWriter.writeString(mutation.name, into: &line)
        line.append(contentsOf: ",\"o\":".utf8)
        line.append(contentsOf: objectJSON)
        line.append(contentsOf: "}\n".utf8)
        try line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(logDescriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    let reason = String(cString: strerror(errno))
                    // Never leave half a record for the next one to be glued to.
                    ftruncate(logDescriptor, off_t(logBytes))
                    throw LocalClusterError.io("\(logPath): write failed: \(reason)")
                }
                offset += written
            }
        }
        logBytes += line.count
        dirty.withLock { $0 = true }
    }

    var needsCompaction: Bool { logBytes > compactionBytes }

    /// Syncs the log to disk if anything was written since the last sync.
    func syncIfDirty() {
        let wasDirty = dirty.withLock { state -> Bool in
            defer { state = false }
            return state
        }
        guard wasDirty, logDescriptor >= 0 else { return }
        fdatasync(logDescriptor)
    }

    /// Writes a snapshot of `objects` at `resourceVersion` and empties the log.
    func compact(objects: [StoredMutation], resourceVersion: Int64) throws {
        let temporary = "\(snapshotPath).tmp"
        var output: [UInt8] = []
        output.append(contentsOf: "{\"rv\":\(resourceVersion),\"op\":\"mark\",\"r\":\"\",\"ns\":\"\",\"n\":\"\",\"o\":{}}\n".utf8)
        for object in objects {
            output.append(contentsOf: "{\"rv\":\(object.resourceVersion),\"op\":\"put\",\"r\":".utf8)
            JSONWriter.writeString(object.resource, into: &output)
            output.append(contentsOf: ",\"ns\":".utf8)
            JSONWriter.writeString(object.namespace, into: &output)
            output.append(contentsOf: ",\"n\":".utf8)
            JSONWriter.writeString(object.name, into: &output)
            output.append(contentsOf: ",\"o\":".utf8)
            JSONWriter.write(.object(object.object), into: &output)
            output.append(contentsOf: "}\n".utf8)
        }
        let fd = Foundation.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LocalClusterError.io("\(temporary): \(String(cString: strerror(errno)))") }
        let ok = output.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) == $0.count }
        fsync(fd)
        close(fd)
        guard ok else { throw LocalClusterError.io("\(temporary): short write") }
        guard rename(temporary, snapshotPath) == 0 else { throw LocalClusterError.io("rename \(temporary): \(String(cString: strerror(errno)))") }
        // The rename must be on disk before the log that it replaces goes.
        let directoryDescriptor = Foundation.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
        if logDescriptor >= 0 { ftruncate(logDescriptor, 0) }
        logBytes = 0
        dirty.withLock { $0 = false }
    }

    // MARK: Decoding

    static func decode(_ line: UnsafeRawBufferPointer) -> StoredMutation? {
        guard case .object(let record) = try? JSONParser.parse(bytes: line),
              let rv = record["rv"]?.intValue, let op = record["op"]?.stringValue,
              let resource = record["r"]?.stringValue, let namespace = record["ns"]?.stringValue,
              let name = record["n"]?.stringValue, let object = record["o"]?.objectValue
        else { return nil }
        if op == "mark" {
            return StoredMutation(resourceVersion: rv, operation: .delete, resource: "", namespace: "", name: "", object: [:])
        }
        guard let operation = StoredMutation.Operation(rawValue: op) else { return nil }
        return StoredMutation(resourceVersion: rv, operation: operation, resource: resource, namespace: namespace, name: name, object: object)
    }

    static func forEachLine(_ data: Data, _ body: (UnsafeRawBufferPointer, Bool) throws -> Void) throws {
        try data.withUnsafeBytes { raw in
            var start = 0
            while start < raw.count {
                let end = raw[start...].firstIndex(of: 0x0A)
                let stop = end ?? raw.count
                if stop > start {
                    try body(UnsafeRawBufferPointer(rebasing: raw[start..<stop]), end == nil || stop + 1 >= raw.count)
                }
                start = stop + 1
            }
        }
    }
}

public enum LocalClusterError: Error, CustomStringConvertible {
    case corruptState(String)
    case io(String)
    case configuration(String)

    public var description: String {
        switch self {
        case .corruptState(let message): return "the state directory is damaged: \(message)"
        case .io(let message): return message
        case .configuration(let message): return message
        }
    }
}
