import Foundation
import Testing
@testable import KubeAPI

@Suite("JSON parser and writer", .timeLimit(.minutes(5)))
struct JSONTests {
    @Test("parses every JSON type", arguments: [
        ("null", JSONValue.null),
        ("true", .bool(true)),
        ("false", .bool(false)),
        ("0", .int(0)),
        ("-12", .int(-12)),
        ("9223372036854775807", .int(Int64.max)),
        ("1.5", .double(1.5)),
        ("-2.5e3", .double(-2500)),
        ("1E2", .double(100)),
        ("\"\"", .string("")),
        ("\"a\\\"b\\\\c\\/d\\n\\t\"", .string("a\"b\\c/d\n\t")),
        ("\"\\u00e9\\u4e2d\"", .string("é中")),
        ("\"\\ud83d\\ude00\"", .string("😀")),
        ("\"caf\u{e9}\"", .string("café")),
        ("[]", .array([])),
        ("[1, \"x\", null]", .array([.int(1), .string("x"), .null])),
        ("{}", .object([:])),
        (" { \"a\" : { \"b\" : [ true ] } } ", .object(["a": .object(["b": .array([.bool(true)])])])),
    ])
    func parses(text: String, expected: JSONValue) throws {
        #expect(try JSONParser.parse(text) == expected)
    }

    @Test("rejects malformed and truncated input with an offset", arguments: [
        ("", "truncated"),
        ("{", "truncated"),
        ("{\"a\"", "truncated"),
        ("{\"a\":", "truncated"),
        ("{\"a\":1", "truncated"),
        ("[1,", "truncated"),
        ("\"abc", "truncated"),
        ("\"\\u12", "truncated"),
        ("{\"kind\":\"Pod\",\"metadata\":{\"na", "truncated"),
        ("tru", "truncated"),
        ("nul", "truncated"),
        ("{a:1}", "expected a string key"),
        ("[1 2]", "expected ',' or ']'"),
        ("{\"a\":1 \"b\":2}", "expected ',' or '}'"),
        ("01", "leading zeros"),
        ("1.", "expected a digit"),
        ("-", "truncated"),
        ("1e", "exponent"),
        ("\"\\x\"", "invalid escape"),
        ("\"\\ud800\"", "low surrogate"),
        ("\"\\udc00\"", "lone low surrogate"),
        ("\"a\nb\"", "control character"),
        ("[1] x", "after the value"),
        ("<html>", "unexpected character"),
        ("\u{0}", "unexpected character"),
    ])
    func rejects(text: String, fragment: String) {
        #expect {
            _ = try JSONParser.parse(text)
        } throws: { error in
            guard let error = error as? JSONParseError else { return false }
            return error.description.contains(fragment)
        }
    }

    @Test("refuses nesting deeper than the limit instead of overflowing the stack")
    func depthLimit() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let ok = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: Never.self) { try JSONParser.parse(ok) }
    }

    @Test("writer output parses back to the same value, with sorted keys")
    func roundTrip() throws {
        let value: JSONValue = [
            "z": 1, "a": ["s": "quote \" backslash \\ newline \n tab \t bell \u{7} é 😀"], "m": [1.25, -3, true, nil],
        ]
        let text = JSONWriter.string(value)
        #expect(text.hasPrefix("{\"a\":"))
        #expect(text.contains("\\u0007"))
        #expect(try JSONParser.parse(text) == value)
    }

    @Test("objects keep fields no model knows through a read-modify-write")
    func unknownFieldsSurvive() throws {
        let text = """
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"ns","futureMeta":{"x":[1,2]}},
         "spec":{"nodeName":"a","futureSpec":"keep","containers":[{"name":"tt","image":"i","futureContainer":{"deep":true}}]},
         "status":{"phase":"Running","futureStatus":42},"futureTop":"yes"}
        """
        var pod = Pod(json: try JSONParser.parseObject(Data(text.utf8)))
        pod.spec.nodeName = "b"
        var containers = pod.spec.containers
        containers[0].image = "j"
        pod.spec.containers = containers
        pod.metadata.labels = ["role": "active"]
        let written = try JSONParser.parseObject(JSONWriter.data(pod.json))
        #expect(written.value(at: ["spec", "nodeName"]) == "b")
        #expect(written.value(at: ["spec", "futureSpec"]) == "keep")
        #expect(written["spec"]?["containers"].arrayValue?.first?["futureContainer"]["deep"] == true)
        #expect(written["spec"]?["containers"].arrayValue?.first?["image"] == "j")
        #expect(written.value(at: ["metadata", "futureMeta", "x"]) == [1, 2])
        #expect(written.value(at: ["metadata", "labels", "role"]) == "active")
        #expect(written.value(at: ["status", "futureStatus"]) == 42)
        #expect(written["futureTop"] == "yes")
    }
}

@Suite("Kubernetes timestamps", .timeLimit(.minutes(5)))
struct KubeTimeTests {
    @Test("parses RFC 3339 forms", arguments: [
        ("2026-11-20T10:00:00Z", 1_795_168_800.0),
        ("2026-11-20T10:00:00.250000Z", 1_795_168_800.25),
        ("2026-11-20T12:00:00+02:00", 1_795_168_800.0),
        ("2026-11-20T09:30:00-00:30", 1_795_168_800.0),
    ])
    func parses(text: String, epoch: Double) throws {
        let date = try #require(KubeTime.parse(text))
        #expect(abs(date.timeIntervalSince1970 - epoch) < 0.000_5)
    }

    @Test("rejects other text", arguments: ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-20 10:00:00Z", "2026-11-20T10:00:00", "2026-11-20T10:00:00.Z"])
    func rejects(text: String) {
        #expect(KubeTime.parse(text) == nil)
    }

    @Test("formats seconds and microseconds")
    func formats() {
        let date = Date(timeIntervalSince1970: 1_795_168_800.123456)
        #expect(KubeTime.format(date) == "2026-11-20T10:00:00Z")
        #expect(KubeTime.formatMicro(date).hasPrefix("2026-11-20T10:00:00.12345"))
        #expect(KubeTime.parse(KubeTime.formatMicro(date)).map { abs($0.timeIntervalSince(date)) < 0.000_01 } == true)
    }
}
