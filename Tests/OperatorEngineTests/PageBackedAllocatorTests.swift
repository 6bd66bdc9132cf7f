import Foundation
import Glibc
import NIOCore
@testable import OperatorEngine
import Testing

/// `PageBackedAllocator`: buffers keep their bytes through every operation, and a large buffer
/// costs only the pages written (read with mincore(2), which asks the kernel itself).
@Suite struct PageBackedAllocatorTests {
    @Test(arguments: [1, 100, 4_000, 16_367, 16_368, 16_384, 32_768, 200_000])
    func buffersKeepTheirBytesThroughWritesGrowthAndCopies(capacity: Int) {
        var buffer = PageBackedAllocator.allocator.buffer(capacity: capacity)
        #expect(buffer.capacity >= capacity)
        let pattern = (0..<(capacity + 5_000)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        buffer.writeBytes(pattern)  // grows past the first capacity: reallocate
        #expect(buffer.readableBytesView.elementsEqual(pattern))
        var copy = buffer  // copy on write: allocate and copy
        copy.writeInteger(UInt8(7))
        #expect(buffer.readableBytes == pattern.count)
        #expect(copy.readableBytes == pattern.count + 1)
        #expect(copy.readableBytesView.prefix(pattern.count).elementsEqual(pattern))
        buffer.withUnsafeReadableBytes { bytes in
            #expect(Int(bitPattern: bytes.baseAddress) % 16 == 0, "as aligned as malloc's")
        }
    }

    @Test(arguments: [(16_367, false), (16_368, true), (1, false), (49_152, true)])
    func theThresholdCountsTheHeader(size: Int, mapped: Bool) {
        #expect(PageBackedAllocator.isMapped(size: size) == mapped)
    }

    @Test func aMappedBufferHasOnlyItsWrittenPagesResident() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let capacity = 64 * page
        var buffer = PageBackedAllocator.allocator.buffer(capacity: capacity)
        buffer.writeBytes([UInt8](repeating: 0xA5, count: 300))
        let (before, total) = try residentPages(of: &buffer, page: page)
        #expect(total >= 64)
        #expect(before <= 2, "\(before) of \(total) pages resident after writing 300 bytes")

        buffer.writeBytes([UInt8](repeating: 0x5A, count: 20 * page))
        let (after, _) = try residentPages(of: &buffer, page: page)
        #expect(after >= 20 && after <= 23, "\(after) pages resident after writing 20 pages more")
    }

    @Test func aMallocBackedBufferStillWorksBelowTheThreshold() {
        var buffer = PageBackedAllocator.allocator.buffer(capacity: 512)
        buffer.writeString("status")
        #expect(buffer.readString(length: 6) == "status")
    }

    /// The resident pages of the mapping under `buffer`'s bytes, and the pages it spans.
    private func residentPages(of buffer: inout ByteBuffer, page: Int) throws -> (resident: Int, total: Int) {
        let capacity = buffer.capacity
        return try buffer.withVeryUnsafeMutableBytes { bytes in
            let start = Int(bitPattern: bytes.baseAddress) - PageBackedAllocator.headerSize
            #expect(start % page == 0, "a mapped block starts on a page")
            let length = (capacity + PageBackedAllocator.headerSize + page - 1) / page * page
            var vector = [UInt8](repeating: 0, count: length / page)
            let result = mincore(UnsafeMutableRawPointer(bitPattern: start), length, &vector)
            guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EINVAL) }
            return (vector.filter { $0 & 1 == 1 }.count, vector.count)
        }
    }
}

/// `HeapTrimmer`: freed heap pages leave RSS when it trims (read from /proc/self/statm).
@Suite struct HeapTrimmerTests {
    @Test func freedPagesGoBackToTheKernel() throws {
        let blockSize = 1_024
        var blocks: [UnsafeMutableRawPointer] = []
        for _ in 0..<(40 * 1_024) {  // 40 MB, every page written
            let block = try #require(malloc(blockSize))
            memset(block, 0x5A, blockSize)
            blocks.append(block)
        }
        // Keep one block in 32, so that the free space is holes malloc keeps, not a top it would give back by itself.
        var kept: [UnsafeMutableRawPointer] = []
        for (index, block) in blocks.enumerated() {
            if index % 32 == 0 { kept.append(block) } else { free(block) }
        }
        defer { kept.forEach { free($0) } }
        let before = try residentBytes()
        HeapTrimmer.trim()
        let after = try residentBytes()
        #expect(before - after >= 10 << 20, "RSS \(before >> 20) MiB before the trim, \(after >> 20) MiB after")
    }

    private func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let fields = statm.split(separator: " ")
        let pages = try #require(fields.count > 1 ? Int(fields[1]) : nil)
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
