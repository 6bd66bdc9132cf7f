import Foundation

/// One line that says where a manual action stands, for `tenops switchover` and friends: the
/// phase and message, and a bar while a copy reports bytes. Pure.
public enum ActionProgress {
    public static func line(_ record: ActionRecord, width: Int = 80, unicode: Bool = true) -> String {
        var text = "\(record.verb ?? "action") \(record.id): \(record.state ?? "Pending")"
        if let phase = record.phase, record.isRunning { text += " (\(phase))" }
        if let done = record.bytesDone, let total = record.bytesTotal, total > 0, record.isRunning {
            let fraction = min(1, max(0, Double(done) / Double(total)))
            let barWidth = 20
            let filled = Int((fraction * Double(barWidth)).rounded(.down))
            let (full, empty) = unicode ? ("█", "░") : ("#", ".")
            text += " [" + String(repeating: full, count: filled) + String(repeating: empty, count: barWidth - filled) + "]"
            text += " \(Int(fraction * 100))% \(bytes(Int64(done))) / \(bytes(Int64(total)))"
        } else if let message = record.message, !message.isEmpty {
            text += ": " + message
        }
        return cut(text, width)
    }

    /// 1.5 MiB, 512 B.
    public static func bytes(_ value: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = Double(value)
        var unit = 0
        while amount >= 1024 && unit < units.count - 1 {
            amount /= 1024
            unit += 1
        }
        return unit == 0 ? "\(value) B" : String(format: "%.1f %@", amount, units[unit])
    }

    static func cut(_ text: String, _ width: Int) -> String {
        guard width > 1, text.count > width else { return text }
        return String(text.prefix(width - 1)) + "…"
    }
}
