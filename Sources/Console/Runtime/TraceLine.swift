/// One line of the frame trace (`TENOPS_CONSOLE_TRACE`), written into bytes kept from frame to
/// frame: `name=value` fields separated by spaces, decimals written by arithmetic. The console
/// writes one per frame, twenty a second while a log streams, and `String(format:)` made about
/// a dozen small allocations for each, in the very process whose memory the benchmark watches.
struct TraceLine {
    private(set) var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(256) }

    /// Starts a line, keeping the storage.
    mutating func start(_ name: StaticString) {
        bytes.removeAll(keepingCapacity: true)
        append(name)
    }

    /// ` name=text`.
    mutating func field(_ name: StaticString, _ text: String) {
        separator(name)
        bytes.append(contentsOf: text.utf8)
    }

    /// ` name=value`.
    mutating func field(_ name: StaticString, _ value: Int) {
        separator(name)
        append(value)
    }

    /// ` name=value`, with `decimals` digits after the point, rounded to the nearest (ties to
    /// even); `nan` or `inf` when it is not finite.
    mutating func field(_ name: StaticString, _ value: Double, decimals: Int) {
        separator(name)
        guard value.isFinite else {
            append(value.isNaN ? "nan" : value < 0 ? "-inf" : "inf")
            return
        }
        var scale = 1.0
        for _ in 0..<max(0, decimals) { scale *= 10 }
        let scaled = (abs(value) * scale).rounded(.toNearestOrEven)
        guard scaled < 9e18 else {
            append(value < 0 ? "-big" : "big")
            return
        }
        let units = Int(scaled), divisor = Int(scale)
        if value.sign == .minus { bytes.append(UInt8(ascii: "-")) }
        append(units / divisor)
        guard decimals > 0 else { return }
        bytes.append(UInt8(ascii: "."))
        var fraction = units % divisor, digit = divisor / 10
        while digit > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(fraction / digit))
            fraction %= digit
            digit /= 10
        }
    }

    /// Ends the line.
    mutating func end() { bytes.append(UInt8(ascii: "\n")) }

    private mutating func separator(_ name: StaticString) {
        bytes.append(UInt8(ascii: " "))
        append(name)
        bytes.append(UInt8(ascii: "="))
    }

    private mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    private mutating func append(_ value: Int) {
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude, divisor: UInt = 1
        while magnitude / divisor >= 10 { divisor *= 10 }
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude / divisor))
            magnitude %= divisor
            divisor /= 10
        }
    }
}
