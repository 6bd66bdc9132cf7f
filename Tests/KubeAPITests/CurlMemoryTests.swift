import Foundation
import Testing

@testable import KubeAPI

@Suite("curl's memory: large blocks kept by size, every block with its size")
struct CurlMemoryTests {
    @Test("a large block curl frees comes back for the next of its size; a small one, or one of another size, does not")
    func largeBlocksKept() throws {
        let size = 16_385
        let first = try #require(CurlMemory.allocate(size))
        let keptBefore = CurlMemory.kept.count(size: size)
        CurlMemory.release(first)
        #expect(CurlMemory.kept.count(size: size) == keptBefore + 1)
        let second = try #require(CurlMemory.allocate(size))
        #expect(second == first, "the kept block is handed out again")
        #expect(CurlMemory.kept.count(size: size) == keptBefore)
        let other = try #require(CurlMemory.allocate(size + 1))
        #expect(other != first)
        CurlMemory.release(other)
        CurlMemory.release(second)

        let small = try #require(CurlMemory.allocate(100))
        let keptBytes = CurlMemory.kept.bytes
        CurlMemory.release(small)
        #expect(CurlMemory.kept.bytes == keptBytes, "small blocks go back to malloc")
        let huge = try #require(CurlMemory.allocate(CurlMemory.largestKeptBytes + 1))
        CurlMemory.release(huge)
        #expect(CurlMemory.kept.bytes == keptBytes, "nor are blocks above the largest kept size kept")
    }

    @Test("reallocation keeps the bytes, from small to large to small, and the size in the header follows", arguments: [
        [10, 20_000, 300], [9_000, 9_100, 12], [0, 8_192, 65_536, 70_000, 1],
    ])
    func reallocation(sizes: [Int]) throws {
        var pointer = try #require(CurlMemory.allocate(sizes[0]))
        var filled = sizes[0]
        for (index, byte) in (0..<filled).enumerated() { pointer.storeBytes(of: UInt8(truncatingIfNeeded: byte &* 7), toByteOffset: index, as: UInt8.self) }
        for size in sizes.dropFirst() {
            pointer = try #require(CurlMemory.reallocate(pointer, size))
            #expect((pointer - CurlMemory.headerBytes).load(as: Int.self) == size)
            let kept = min(filled, size)
            let bytes = (0..<kept).map { pointer.load(fromByteOffset: $0, as: UInt8.self) }
            #expect(bytes == (0..<kept).map { UInt8(truncatingIfNeeded: $0 &* 7) }, "the first \(kept) bytes survive a move to \(size)")
            for index in kept..<size { pointer.storeBytes(of: UInt8(truncatingIfNeeded: index &* 7), toByteOffset: index, as: UInt8.self) }
            filled = size
        }
        #expect(Int(bitPattern: pointer) % 16 == 0, "aligned as malloc aligns")
        CurlMemory.release(pointer)
    }

    @Test("calloc zeroes, even a kept block written before; it refuses a size that overflows; strdup copies")
    func callocAndStrdup() throws {
        let size = 10_000
        let dirty = try #require(CurlMemory.allocate(size))
        dirty.initializeMemory(as: UInt8.self, repeating: 0xAB, count: size)
        CurlMemory.release(dirty)
        let zeroed = try #require(CurlMemory.allocateZeroed(size / 4, 4))
        #expect(zeroed == dirty, "the kept block, reused")
        #expect((0..<size).allSatisfy { zeroed.load(fromByteOffset: $0, as: UInt8.self) == 0 })
        CurlMemory.release(zeroed)
        #expect(CurlMemory.allocateZeroed(Int.max / 2, 3) == nil)
        #expect(CurlMemory.allocate(Int.max) == nil)

        let copy = try #require("kube-apiserver é".withCString { CurlMemory.duplicate($0) })
        #expect(String(cString: copy) == "kube-apiserver é")
        CurlMemory.release(UnsafeMutableRawPointer(copy))
        #expect(CurlMemory.duplicate(nil) == nil)
        CurlMemory.release(nil)
    }

    @Test("kept: from 1 KiB (curl's block of 1,496 bytes per transfer, its 16 KiB buffers) to 64 KiB", arguments: [
        (1_023, false), (1_024, true), (1_496, true), (16_384, true), (16_385, true), (65_536, true), (65_537, false), (0, false),
    ])
    func keptSizes(size: Int, kept: Bool) {
        #expect(CurlMemory.isKeptSize(size) == kept)
    }

    @Test("the kept blocks are bounded per size and in bytes")
    func bounds() {
        let blocks = KeptBlocks(perSize: 2, maximumBytes: 50_000)
        let pointers = (0..<4).map { _ in malloc(20_000)! }
        #expect(blocks.keep(pointers[0], size: 20_000))
        #expect(blocks.keep(pointers[1], size: 20_000))
        #expect(!blocks.keep(pointers[2], size: 20_000), "two of one size at most")
        #expect(!blocks.keep(pointers[3], size: 12_000), "50,000 bytes at most")
        #expect(blocks.keep(pointers[3], size: 10_000))
        #expect(blocks.bytes == 50_000)
        #expect(blocks.take(size: 20_000) == pointers[1], "the block kept last comes first")
        #expect(blocks.take(size: 12_000) == nil)
        free(pointers[2])
        for size in [20_000, 10_000] { while let pointer = blocks.take(size: size) { free(pointer) } }
        #expect(blocks.bytes == 0)
    }
}
