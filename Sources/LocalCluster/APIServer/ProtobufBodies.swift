import Foundation
import KubeAPI

/// kubectl's typed commands (`kubectl create namespace`, for one) send protobuf, and do not fall
/// back to JSON on a 415. This reads the Kubernetes protobuf envelope and the few kinds this
/// server accepts that way, into the same JSON the rest of the server handles. Pure.
enum ProtobufBodies {
    struct Reader {
        let bytes: [UInt8]
        var index = 0

        mutating func varint() -> UInt64? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count, shift < 64 {
                let byte = bytes[index]
                index += 1
                result |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
            }
            return nil
        }

        /// The next field: number, wire type, and for length-delimited fields the bytes.
        mutating func field() -> (number: Int, wire: UInt64, data: [UInt8], value: UInt64)? {
            guard index < bytes.count, let key = varint() else { return nil }
            let number = Int(key >> 3), wire = key & 7
            switch wire {
            case 0:
                guard let value = varint() else { return nil }
                return (number, wire, [], value)
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - index) else { return nil }
                let data = Array(bytes[index..<index + Int(length)])
                index += Int(length)
                return (number, wire, data, 0)
            case 1:
                guard index + 8 <= bytes.count else { return nil }
                index += 8
                return (number, wire, [], 0)
            case 5:
                guard index + 4 <= bytes.count else { return nil }
                index += 4
                return (number, wire, [], 0)
            default:
                return nil
            }
        }
    }

    /// Decodes an envelope whose kind is listed here; nil for anything else or malformed bytes.
    static func decode(_ body: [UInt8]) -> JSONObject? {
        guard body.count > 4, Array(body.prefix(4)) == [0x6B, 0x38, 0x73, 0x00] else { return nil }
        var envelope = Reader(bytes: Array(body.dropFirst(4)))
        var apiVersion = "", kind = ""
        var raw: [UInt8] = []
        while let field = envelope.field() {
            switch field.number {
            case 1:
                var typeMeta = Reader(bytes: field.data)
                while let inner = typeMeta.field() {
                    if inner.number == 1 { apiVersion = String(decoding: inner.data, as: UTF8.self) }
                    if inner.number == 2 { kind = String(decoding: inner.data, as: UTF8.self) }
                }
            case 2: raw = field.data
            default: break
            }
        }
        guard envelope.index == envelope.bytes.count else { return nil }
        switch (apiVersion, kind) {
        case ("v1", "Namespace"): return namespace(raw)
        case ("v1", "ConfigMap"): return configMap(raw)
        case ("v1", "Secret"): return secret(raw)
        default: return nil
        }
    }

    static func namespace(_ raw: [UInt8]) -> JSONObject? {
        var reader = Reader(bytes: raw)
        var object: JSONObject = ["apiVersion": "v1", "kind": "Namespace"]
        while let field = reader.field() {
            switch field.number {
            case 1: object["metadata"] = .object(objectMeta(field.data))
            case 2:
                var spec = Reader(bytes: field.data)
                var finalizers: [JSONValue] = []
                while let inner = spec.field() { if inner.number == 1 { finalizers.append(.string(String(decoding: inner.data, as: UTF8.self))) } }
                if !finalizers.isEmpty { object["spec"] = ["finalizers": .array(finalizers)] }
            default: break
            }
        }
        guard reader.index == raw.count else { return nil }
        return object
    }

    /// ConfigMap: metadata 1, data 2 (map of strings), binaryData 3 (map of bytes), immutable 4.
    static func configMap(_ raw: [UInt8]) -> JSONObject? {
        var reader = Reader(bytes: raw)
        var object: JSONObject = ["apiVersion": "v1", "kind": "ConfigMap"]
        var data: JSONObject = [:], binary: JSONObject = [:]
        while let field = reader.field() {
            switch field.number {
            case 1: object["metadata"] = .object(objectMeta(field.data))
            case 2: if let (k, v) = entry(field.data) { data[k] = .string(String(decoding: v, as: UTF8.self)) }
            case 3: if let (k, v) = entry(field.data) { binary[k] = .string(Data(v).base64EncodedString()) }
            case 4: object["immutable"] = .bool(field.value != 0)
            default: break
            }
        }
        guard reader.index == raw.count else { return nil }
        if !data.isEmpty { object["data"] = .object(data) }
        if !binary.isEmpty { object["binaryData"] = .object(binary) }
        return object
    }

    /// Secret: metadata 1, data 2 (map of bytes), type 3, stringData 4, immutable 5.
    static func secret(_ raw: [UInt8]) -> JSONObject? {
        var reader = Reader(bytes: raw)
        var object: JSONObject = ["apiVersion": "v1", "kind": "Secret"]
        var data: JSONObject = [:], strings: JSONObject = [:]
        while let field = reader.field() {
            switch field.number {
            case 1: object["metadata"] = .object(objectMeta(field.data))
            case 2: if let (k, v) = entry(field.data) { data[k] = .string(Data(v).base64EncodedString()) }
            case 3: object["type"] = .string(String(decoding: field.data, as: UTF8.self))
            case 4: if let (k, v) = entry(field.data) { strings[k] = .string(String(decoding: v, as: UTF8.self)) }
            case 5: object["immutable"] = .bool(field.value != 0)
            default: break
            }
        }
        guard reader.index == raw.count else { return nil }
        if !data.isEmpty { object["data"] = .object(data) }
        if !strings.isEmpty { object["stringData"] = .object(strings) }
        return object
    }

    /// One map entry: key 1, value 2.
    static func entry(_ raw: [UInt8]) -> (String, [UInt8])? {
        var reader = Reader(bytes: raw)
        var key: String?
        var value: [UInt8] = []
        while let field = reader.field() {
            if field.number == 1 { key = String(decoding: field.data, as: UTF8.self) }
            if field.number == 2 { value = field.data }
        }
        return key.map { ($0, value) }
    }

    static func objectMeta(_ raw: [UInt8]) -> JSONObject {
        var reader = Reader(bytes: raw)
        var metadata: JSONObject = [:]
        var labels: JSONObject = [:], annotations: JSONObject = [:]
        while let field = reader.field() {
            let text = String(decoding: field.data, as: UTF8.self)
            switch field.number {
            case 1: metadata["name"] = .string(text)
            case 2: metadata["generateName"] = .string(text)
            case 3: metadata["namespace"] = .string(text)
            case 11, 12:
                var entry = Reader(bytes: field.data)
                var key = "", value = ""
                while let inner = entry.field() {
                    if inner.number == 1 { key = String(decoding: inner.data, as: UTF8.self) }
                    if inner.number == 2 { value = String(decoding: inner.data, as: UTF8.self) }
                }
                if field.number == 11 { labels[key] = .string(value) } else { annotations[key] = .string(value) }
            default: break
            }
        }
        if !labels.isEmpty { metadata["labels"] = .object(labels) }
        if !annotations.isEmpty { metadata["annotations"] = .object(annotations) }
        return metadata
    }
}
