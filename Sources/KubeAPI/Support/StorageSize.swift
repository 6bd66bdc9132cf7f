/// Sizes for storage made and freed at a high rate (a stream's chunks, a log pane's batches):
/// rounded up to a power of two, so that a block freed is reused as it is by the next of its
/// size, where blocks of every length would be carved from the heap and leave it in pieces.
public enum StorageSize {
    /// `count` rounded up to a power of two, and to `minimum` at least.
    public static func powerOfTwo(atLeast count: Int, minimum: Int) -> Int {
        max(minimum, 1 << (Int.bitWidth - max(0, count - 1).leadingZeroBitCount))
    }
}
