/// Kubernetes' `$(VAR)` expansion, as the kubelet applies it to a container's `command`,
/// `args` and `env[].value` (a port of `third_party/forked/golang/expansion`):
///
/// - `$(NAME)` becomes the value of NAME when NAME is defined, and stays `$(NAME)` when not;
/// - `$$` is an escaped `$`, so `$$(NAME)` gives the literal `$(NAME)`;
/// - any other `$`, and a `$(` that is never closed, stays as it is.
enum VariableExpansion {
    static func expand(_ input: String, _ lookup: (String) -> String?) -> String {
        let bytes = Array(input.utf8)
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var cursor = 0
        while cursor < bytes.count {
            guard bytes[cursor] == UInt8(ascii: "$"), cursor + 1 < bytes.count else {
                output.append(bytes[cursor])
                cursor += 1
                continue
            }
            let next = bytes[cursor + 1]
            if next == UInt8(ascii: "$") {
                output.append(next)
                cursor += 2
            } else if next == UInt8(ascii: "("), let close = bytes[(cursor + 2)...].firstIndex(of: UInt8(ascii: ")")) {
                let name = String(decoding: bytes[(cursor + 2)..<close], as: UTF8.self)
                output.append(contentsOf: (lookup(name) ?? "$(\(name))").utf8)
                cursor = close + 1
            } else {
                output.append(bytes[cursor])
                cursor += 1
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
