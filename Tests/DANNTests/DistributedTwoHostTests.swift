import Foundation
import XCTest
@testable import DANN

/// Two "hosts" on one machine: two network namespaces joined by a veth pair, private addresses inside
/// them only. mpirun runs in the first, reaches the second through `scripts/netns-launch-agent.sh` (the
/// rsh agent enters the namespace the hostfile names), and the ranks talk over TCP across the pair.
final class DistributedTwoHostTests: XCTestCase {
    private let suffix = String(getpid() % 100_000)
    private var namespaces: [String] { ["dann-a\(suffix)", "dann-b\(suffix)"] }
    private let addresses = ["10.77.0.1", "10.77.0.2"]
    private var created: [String] = []

    /// iproute2's `ip`, wherever this system keeps it.
    private let ipPath: String? = ((ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
                                   + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .map { $0 + "/ip" }.first { FileManager.default.isExecutableFile(atPath: $0) }

    private func ip(_ arguments: [String]) throws -> RunResult {
        try runTool(try XCTUnwrap(ipPath), arguments, timeout: 30)
    }

    override func setUpWithError() throws {
        guard ipPath != nil else {
            throw XCTSkip("two-host test skipped: `ip` (iproute2) is not installed")
        }
        try requireMPIRun()
        for name in namespaces {
            let result = try ip(["netns", "add", name])
            guard result.status == 0 else {
                throw XCTSkip("two-host test skipped: cannot create network namespaces here (needs root / CAP_SYS_ADMIN): \(result.stderr)")
            }
            created.append(name)
        }
        let veth = ["dva\(suffix)", "dvb\(suffix)"]
        var steps: [[String]] = [["link", "add", veth[0], "type", "veth", "peer", "name", veth[1]]]
        for i in 0..<2 {
            steps += [["link", "set", veth[i], "netns", namespaces[i]],
                      ["-n", namespaces[i], "addr", "add", addresses[i] + "/24", "dev", veth[i]],
                      ["-n", namespaces[i], "link", "set", veth[i], "up"],
                      ["-n", namespaces[i], "link", "set", "lo", "up"]]
        }
        for step in steps {
            let result = try ip(step)
            guard result.status == 0 else {
                throw XCTSkip("two-host test skipped: `ip \(step.joined(separator: " "))` failed: \(result.stderr)")
            }
        }
    }

    override func tearDownWithError() throws {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        for name in created { _ = try? ip(["netns", "delete", name]) }
        created = []
    }

    func testTwoNamespacesOverTCPMatchTheSingleHostRun() throws {
        let twoHosts = TestPaths.temporaryDirectory("dist-2host"), oneHost = TestPaths.temporaryDirectory("dist-1host")
        defer { for url in [twoHosts, oneHost] { try? FileManager.default.removeItem(at: url) } }
        let hostfile = twoHosts.appendingPathComponent("hostfile"), log = twoHosts.appendingPathComponent("agent.log")
        try addresses.map { "\($0) slots=1\n" }.joined().write(to: hostfile, atomically: true, encoding: .utf8)
        let agent = TestPaths.packageRoot.appendingPathComponent("scripts/netns-launch-agent.sh").path
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: agent), agent)

        var environment = ChildProcess.mpirunEnvironment()
        environment["DANN_NETNS_HOSTS"] = zip(addresses, namespaces).map { "\($0)=\($1)" }.joined(separator: " ")
        environment["DANN_NETNS_LOG"] = log.path
        let out = twoHosts.appendingPathComponent("run")
        let mpirun = ["netns", "exec", namespaces[0], mpirunPath, "--allow-run-as-root", "--hostfile", hostfile.path,
                      "-np", "2", "--map-by", "node", "--bind-to", "none", "--display-map",
                      "--mca", "plm_rsh_agent", agent,
                      "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "10.77.0.0/24",
                      "--mca", "oob_tcp_if_include", "10.77.0.0/24", try executable()]
        let result = try run(try XCTUnwrap(ipPath), mpirun + (try distributedTrainArguments(out: out, steps: 6)), environment: environment)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)

        // Rank 1 was mapped to the second address and launched inside the second namespace.
        XCTAssertNotNil(result.stdout.range(of: #"Data for node: 10\.77\.0\.2\s.*\n\s*Process OMPI jobid: \[\d+,\d+\] App: 0 Process rank: 1"#,
                                            options: .regularExpression), result.stdout)
        XCTAssertEqual(try String(contentsOf: log, encoding: .utf8), "10.77.0.2 \(namespaces[1])\n")
        // `auto` exchanges through node memory only when every rank is on one node; asked for, it is refused.
        XCTAssertNotNil(result.stdout.range(of: #"│ allreduce\s+│ buckets"#, options: .regularExpression), result.stdout)
        let refused = try run(try XCTUnwrap(ipPath), mpirun + (try distributedTrainArguments(out: out, steps: 1)) + ["--allreduce", "shared"],
                              environment: environment)
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("dann-dist: error: --allreduce shared needs every rank on one node (1 of 2 ranks are on this one); use buckets"),
                      refused.stderr)

        let single = try runMPI(ranks: 2, try distributedTrainArguments(out: oneHost, steps: 6))
        XCTAssertEqual(single.status, 0, single.stderr)
        XCTAssertNotNil(single.stdout.range(of: #"│ allreduce\s+│ shared"#, options: .regularExpression), single.stdout)
        let reference = try finalWeights(oneHost)
        XCTAssertLessThanOrEqual(tensorRelativeError(try finalWeights(out), reference), 1e-6)
        XCTAssertGreaterThan(tensorNorm(reference), 1)
    }
}
