#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@_spi(CustomByteBufferAllocator) import NIOCore

/// The `ByteBuffer` allocator of the agents' status streams: a buffer of 16 KB or more gets
/// an anonymous mapping of its own, so that only the pages it has written count towards RSS,
/// and freeing it gives them back to the kernel at once.
///
/// Why: swift-nio-ssl gives each connection a 32 KB plaintext read buffer and a 16 KB outbound
/// buffer. A status stream writes a few hundred bytes into each, but from malloc's arenas all
/// 48 KB can be resident (pages that earlier allocations touched). Mapped, each costs one or two
/// pages: 8 KB a stream in `smaps` at 1,000 pairs. Smaller buffers come from malloc as usual.
///
/// Every block carries a 16-byte header in front of the bytes the buffer sees: the mapping's
/// length, or 0 for a malloc'd block. The header keeps the bytes 16-byte aligned, as malloc's.
enum PageBackedAllocator {
    static let allocator = ByteBufferAllocator(
        allocate: { size in PageBackedAllocator.allocate(size) },
        reallocate: { pointer, oldSize, newSize in PageBackedAllocator.reallocate(pointer, oldSize: oldSize, newSize: newSize) },
        deallocate: { pointer in PageBackedAllocator.deallocate(pointer) },
        copy: { destination, source, count in destination.copyMemory(from: source, byteCount: count) }
    )

    /// Blocks of this size and more, header included, are mapped.
    static let mappingThreshold = 16 * 1024
    static let headerSize = 16
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Whether a block for `size` bytes is mapped.
    static func isMapped(size: Int) -> Bool { size + headerSize >= mappingThreshold }

    static func allocate(_ size: Int) -> UnsafeMutableRawPointer? {
        let total = size + headerSize
        if isMapped(size: size), let mapping = map(total) {
            return mapping.base.advanced(by: headerSize).withHeader(mapping.length)
        }
        // Below the threshold, or when the kernel refuses a mapping: malloc, marked by a 0 header.
        guard let base = malloc(total) else { return nil }
        return base.advanced(by: headerSize).withHeader(0)
    }

    static func deallocate(_ pointer: UnsafeMutableRawPointer) {
        let base = pointer.advanced(by: -headerSize)
        let length = base.load(as: Int.self)
        if length > 0 {
            munmap(base, length)
        } else {
            free(base)
        }
    }

    static func reallocate(_ pointer: UnsafeMutableRawPointer?, oldSize: Int, newSize: Int) -> UnsafeMutableRawPointer? {
        guard let pointer else { return allocate(newSize) }
        guard let fresh = allocate(newSize) else { return nil }
        fresh.copyMemory(from: pointer, byteCount: min(oldSize, newSize))
        deallocate(pointer)
        return fresh
    }

    private static func map(_ total: Int) -> (base: UnsafeMutableRawPointer, length: Int)? {
        let length = (total + pageSize - 1) / pageSize * pageSize
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              base != UnsafeMutableRawPointer(bitPattern: -1)
        else { return nil }
        return (base, length)
    }
}

private extension UnsafeMutableRawPointer {
    /// Writes the block's header (the mapping's length, or 0) in front of `self`, and returns `self`.
    func withHeader(_ length: Int) -> UnsafeMutableRawPointer {
        advanced(by: -PageBackedAllocator.headerSize).storeBytes(of: length, as: Int.self)
        return self
    }
}
