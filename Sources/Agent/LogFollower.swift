import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Follows a log file the way `tail -F` does, for the `daemonlog` sidecar: it waits for the file
/// to appear, prints what is appended, and survives rotation. When the path names a new file (a
/// new inode: rename-and-create rotation) it finishes the old file and starts the new one from
/// its beginning; when the file shrinks (copy-and-truncate rotation) it starts again from the
/// beginning.
public struct LogFollower: Sendable {
    public var path: String
    /// How many of the last lines of an existing file to print first.
    public var initialLines: Int
    public var pollInterval: Duration

    public init(path: String, initialLines: Int = 100, pollInterval: Duration = .milliseconds(100)) {
        self.path = path
        self.initialLines = initialLines
        self.pollInterval = pollInterval
    }

    /// Runs until the calling task is cancelled, handing every chunk read to `emit`.
    public func run(emit: @Sendable ([UInt8]) -> Void) async {
        var file: OpenFile?
        var firstOpen = true
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while !Task.isCancelled {
            if file == nil {
                file = OpenFile(path: path)
                if var opened = file {
                    if firstOpen { opened.position = opened.offsetOfLast(lines: initialLines) }
                    file = opened
                }
                firstOpen = false
            }
            if var current = file {
                current.drain(into: &buffer, emit: emit)
                var info = stat()
                if stat(path, &info) == 0, info.st_ino != current.inode || info.st_dev != current.device {
                    // Rotated: finish the old file, then take the new one from its start.
                    current.drain(into: &buffer, emit: emit)
                    current.close()
                    file = OpenFile(path: path)
                    continue
                }
                var own = stat()
                if fstat(current.fd, &own) == 0, own.st_size < current.position {
                    current.position = 0  // truncated
                    file = current
                    continue
                }
                file = current
            }
            try? await Task.sleep(for: pollInterval)
        }
        file?.close()
    }

    struct OpenFile {
        let fd: Int32
        let inode: ino_t
        let device: dev_t
        var position: off_t = 0

        init?(path: String) {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                Glibc.close(fd)
                return nil
            }
            self.fd = fd
            self.inode = info.st_ino
            self.device = info.st_dev
        }

        /// Reads from `position` to the end of the file.
        mutating func drain(into buffer: inout [UInt8], emit: ([UInt8]) -> Void) {
            while true {
                let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, position) }
                guard count > 0 else { return }
                position += off_t(count)
                emit(Array(buffer[0..<count]))
            }
        }

        /// The offset where the last `lines` lines begin.
        func offsetOfLast(lines: Int) -> off_t {
            var info = stat()
            guard fstat(fd, &info) == 0 else { return 0 }
            let size = info.st_size
            guard lines > 0 else { return size }
            var newlines = 0
            var offset = size
            var chunk = [UInt8](repeating: 0, count: 8192)
            while offset > 0 {
                let length = Int(min(off_t(chunk.count), offset))
                offset -= off_t(length)
                let count = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, offset) }
                guard count == length else { return 0 }
                for index in stride(from: length - 1, through: 0, by: -1) where chunk[index] == 0x0A {
                    // The file's final newline ends the last line; it does not start one.
                    if offset + off_t(index) == size - 1 { continue }
                    newlines += 1
                    if newlines == lines { return offset + off_t(index) + 1 }
                }
            }
            return 0
        }

        func close() { Glibc.close(fd) }
    }
}
