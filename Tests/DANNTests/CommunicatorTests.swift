import Foundation
import XCTest
@testable import DANN

/// The in-process parts of the communicator layer: the single-process group, launcher detection and the
/// thread split. (MPI itself runs in child processes: CommunicatorMPITests.)
final class CommunicatorTests: XCTestCase {
    func testSingleProcessCollectivesAreIdentity() {
        let comm = SingleProcessCommunicator()
        XCTAssertEqual([comm.rank, comm.size, comm.localRank, comm.localSize], [0, 1, 0, 1])
        XCTAssertTrue(comm.isRoot)

        var floats: [Float] = [1.5, -2, 3]
        floats.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: 3) }
        XCTAssertEqual(floats, [1.5, -2, 3])
        var doubles = [0.25, 7]
        doubles.withUnsafeMutableBufferPointer { comm.allreduceSum($0.baseAddress!, count: 2) }
        doubles.withUnsafeMutableBufferPointer { comm.allreduceMax($0.baseAddress!, count: 2) }
        XCTAssertEqual(doubles, [0.25, 7])

        let pending = floats.withUnsafeMutableBufferPointer { comm.startAllreduceSum($0.baseAddress!, count: 3) }
        XCTAssertTrue(pending.isComplete, "nothing to wait for in a group of one")
        XCTAssertTrue(comm.progress(pending))
        comm.wait(pending)
        comm.waitAll([pending])
        XCTAssertEqual(floats, [1.5, -2, 3])

        var bytes: [UInt8] = [9, 8, 7]
        bytes.withUnsafeMutableBytes { comm.broadcast($0.baseAddress!, bytes: 3, root: 0) }
        XCTAssertEqual(bytes, [9, 8, 7])
        XCTAssertEqual(comm.allgather([1, 2]), [[1, 2]])
        comm.barrier()
        comm.finalize()
    }

    func testHostnameIsTheKernelsHostname() throws {
        let expected = try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(SingleProcessCommunicator().hostname, expected)
    }

    func testLauncherDetection() {
        XCTAssertFalse(launchedByMPI(environment: [:]))
        XCTAssertFalse(launchedByMPI(environment: ["PATH": "/usr/bin", "OMPI_MCA_btl": "self"]))
        XCTAssertTrue(launchedByMPI(environment: ["OMPI_COMM_WORLD_SIZE": "4"]))
        XCTAssertTrue(launchedByMPI(environment: ["PMIX_RANK": "0"]))
        XCTAssertTrue(launchedByMPI(environment: ["PMI_SIZE": "2"]))
        // The test process itself was not started by mpirun, so it gets the single-process group.
        if !launchedByMPI() {
            XCTAssertTrue(makeCommunicator() is SingleProcessCommunicator)
        }
    }

    func testThreadsPerRankSplitsCores() {
        XCTAssertEqual(defaultThreadsPerRank(localSize: 1, cores: 2, allowedCores: nil), 2)
        XCTAssertEqual(defaultThreadsPerRank(localSize: 2, cores: 2, allowedCores: nil), 1)
        XCTAssertEqual(defaultThreadsPerRank(localSize: 4, cores: 2, allowedCores: nil), 1, "never below one thread")
        XCTAssertEqual(defaultThreadsPerRank(localSize: 3, cores: 16, allowedCores: nil), 5)
        XCTAssertEqual(defaultThreadsPerRank(localSize: 0, cores: 8, allowedCores: nil), 8)
        XCTAssertEqual(defaultThreadsPerRank(localSize: 1, cores: 16, allowedCores: 16), 16)
        XCTAssertEqual(defaultThreadsPerRank(localSize: 1, cores: 16, allowedCores: 1), 1, "a rank bound to one core")
        XCTAssertEqual(defaultThreadsPerRank(localSize: 2, cores: 16, allowedCores: 4), 4)
        XCTAssertEqual(defaultThreadsPerRank(localSize: 4, cores: 16, allowedCores: 1, override: 7), 7)
        XCTAssertEqual(defaultThreadsPerRank(localSize: 4, cores: 16, allowedCores: nil, override: 0), 4, "0 means no override")
    }

    func testCPUListCount() {
        XCTAssertEqual(cpuCount(inList: "0"), 1)
        XCTAssertEqual(cpuCount(inList: "0-1"), 2)
        XCTAssertEqual(cpuCount(inList: "0-3,8,10-11"), 7)
        XCTAssertNil(cpuCount(inList: ""))
        XCTAssertNil(cpuCount(inList: "3-1"))
        XCTAssertNil(cpuCount(inList: "0-"))
        XCTAssertNil(cpuCount(inList: "x"))
        XCTAssertEqual(cpusAllowedList() == "?", coresAllowedByAffinity() == nil, "one parser behind both")
    }

    func testAffinityCountMatchesNproc() throws {
        // nproc (coreutils) counts the CPUs in this process's affinity mask via sched_getaffinity.
        let output = try ChildProcess.runTool("/usr/bin/env", ["nproc"]).stdout
        XCTAssertEqual(coresAllowedByAffinity(), Int(output.trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(defaultThreadsPerRank(localSize: 1), min(ProcessInfo.processInfo.activeProcessorCount, coresAllowedByAffinity()!))
    }
}
