import Foundation

/// The group of one: every collective is the identity, and no MPI library call is ever made, so the binary
/// also runs where MPI cannot start (no launcher, sandboxed laptops).
public final class SingleProcessCommunicator: Communicator {
    public let rank = 0
    public let size = 1
    public let localRank = 0
    public let localSize = 1
    public let hostname: String

    public init() {
        hostname = currentHostname()
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func allreduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction {
        PendingReduction()
    }

    public func wait(_ pending: PendingReduction) {
        pending.isComplete = true
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        precondition(root == 0, "broadcast root \(root) outside a group of 1")
    }

    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] { [bytes] }

    public func barrier() {}

    public func abort(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        exit(1)
    }

    public func finalize() {}
}
