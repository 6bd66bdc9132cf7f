import CoreMetrics
import KubeAPI
@testable import OperatorEngine
import Synchronization
import Testing

/// The state gauge as a scrape sees it between two records: the metrics go to a backend that
/// writes down each gauge record in order (swift-metrics' factory interface; the test process's one
/// bootstrap, which no other test makes).
@Suite struct EngineMetricsTests {
    @Test("a state change records the new state at 1 before the old one at 0: no scrape sees a pair in no state")
    func newStateFirst() throws {
        let records = RecordingMetrics.shared
        let key = ObjectKey(namespace: "metrics-order", name: "pair-\(UInt32.random(in: 0...UInt32.max))")
        var normal = TimesTenClassicStatus(json: [:])
        normal.highLevelState = "Normal"
        var activeDown = TimesTenClassicStatus(json: [:])
        activeDown.highLevelState = "ActiveDown"

        EngineMetrics.recorded(key, status: normal, previous: TimesTenClassicStatus(json: [:]), events: [])
        EngineMetrics.recorded(key, status: activeDown, previous: normal, events: [])
        EngineMetrics.recorded(key, status: normal, previous: activeDown, events: [])
        defer { EngineMetrics.forget(key) }

        let states = records.states(of: key)
        #expect(states.map(\.state) == ["Normal", "ActiveDown", "Normal", "Normal", "ActiveDown"])
        #expect(states.map(\.value) == [1, 1, 0, 1, 0])
        // Replayed one record at a time, as scrapes in between would see the series: after the
        // first record, at least one state is always at 1.
        var current: [String: Double] = [:]
        for (index, record) in states.enumerated() {
            current[record.state] = record.value
            #expect(current.values.contains(1), "after record \(index): \(current)")
        }
    }
}

/// A swift-metrics backend that keeps every gauge record, in order. Counters and timers are
/// accepted and dropped.
final class RecordingMetrics: MetricsFactory, Sendable {
    struct StateRecord: Sendable {
        let name: String
        let namespace: String
        let state: String
        let value: Double
    }

    static let shared: RecordingMetrics = {
        let metrics = RecordingMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    private let records = Mutex<[StateRecord]>([])

    func states(of key: ObjectKey) -> [StateRecord] {
        records.withLock { $0.filter { $0.name == key.name && $0.namespace == (key.namespace ?? "") } }
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard label == EngineMetrics.Name.pairState, !aggregate else { return Dropped() }
        let lookup = Dictionary(dimensions, uniquingKeysWith: { $1 })
        return StateGauge(owner: self, name: lookup["name"] ?? "", namespace: lookup["namespace"] ?? "", state: lookup["state"] ?? "")
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler { Dropped() }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { Dropped() }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}

    fileprivate func append(_ record: StateRecord) { records.withLock { $0.append(record) } }

    private final class StateGauge: RecorderHandler, Sendable {
        init(owner: RecordingMetrics, name: String, namespace: String, state: String) {
            self.owner = owner
            self.name = name
            self.namespace = namespace
            self.state = state
        }
        let owner: RecordingMetrics
        let name: String
        let namespace: String
        let state: String
        func record(_ value: Int64) { record(Double(value)) }
        func record(_ value: Double) { owner.append(StateRecord(name: name, namespace: namespace, state: state, value: value)) }
    }

    private final class Dropped: CounterHandler, RecorderHandler, TimerHandler, Sendable {
        func increment(by: Int64) {}
        func reset() {}
        func record(_ value: Int64) {}
        func record(_ value: Double) {}
        func recordNanoseconds(_ duration: Int64) {}
    }
}
