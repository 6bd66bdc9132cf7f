import Agent
import Foundation
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// SIMULATED: the agents of the scale benchmark's simulated pods, all in this process. Each pod
/// gets the real agent endpoint (`AgentEndpoint`: Hummingbird over mutual TLS with the pod's
/// mounted agent certificate, the agent's routes, verbs and client verification) listening on
/// podIP:8443, in front of a `SimulatedDatabase` instead of PostgreSQL.
final class SimulatedAgents: Sendable {
    /// One pod's agent.
    struct Running: Sendable {
        var uid: String
        var endpoint: AgentEndpoint
    }

    let databases = SimulatedDatabases()
    private let running = Mutex<[String: Running]>([:])
    private let logger: Logger

    init() {
        var logger = Logger(label: "tenops-bench.simulated-agent")
        logger.logLevel = .error
        self.logger = logger
    }

    var count: Int { running.withLock { $0.count } }

    /// Starts the agent of pod incarnation `uid` (`key` is namespace/name) at `address`, unless it
    /// runs already. `volumes` maps /tt, /ttconfig and /agent-tls to the pod's directories, which
    /// the simulated kubelet has filled as a kubelet fills a pod's volumes.
    func start(key: String, uid: String, address: String, databaseName: String, volumes: VolumeMap) async throws {
        if running.withLock({ $0[key]?.uid == uid }) { return }
        await stop(key)
        let configuration = AgentConfiguration(
            listenAddress: address, port: 8443, tlsDirectory: "/agent-tls", volumes: volumes, databaseName: databaseName,
            serverUser: ServerUser(name: "simulated", uid: getuid(), gid: getgid()), execChild: nil)
        let endpoint = try await AgentEndpoint.start(
            configuration, engine: databases.database(for: address), logger: logger, onDie: { [weak self] in
                Task { await self?.stop(key) }
            })
        let replaced = running.withLock { running -> Running? in
            defer { running[key] = Running(uid: uid, endpoint: endpoint) }
            return running[key]
        }
        if let replaced { await replaced.endpoint.stop() }
    }

    /// Stops the agent of pod `key` (its database stays, as a volume does).
    func stop(_ key: String) async {
        let stopped = running.withLock { $0.removeValue(forKey: key) }
        await stopped?.endpoint.stop()
    }

    func stopAll() async {
        let all = running.withLock { running -> [Running] in
            defer { running = [:] }
            return Array(running.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for agent in all { group.addTask { await agent.endpoint.stop() } }
        }
    }
}
