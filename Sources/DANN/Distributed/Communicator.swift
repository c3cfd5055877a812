import Foundation

/// What the trainer needs from a group of cooperating processes (docs/design.md §3.1). The training code sees only
/// this protocol; `SingleProcessCommunicator` and `MPICommunicator` are the two implementations.
/// All calls are collective (every rank must make them in the same order) except `abort`.
public protocol Communicator: AnyObject {
    /// This process's index in the group, 0 ..< size.
    var rank: Int { get }
    /// Number of processes in the group.
    var size: Int { get }
    /// Index among the processes on this node (shared-memory domain).
    var localRank: Int { get }
    /// Number of processes on this node, used to split the cores between them.
    var localSize: Int { get }
    /// The name of the machine this rank runs on.
    var hostname: String { get }

    /// Replaces `buffer[0..<count]` with its elementwise sum over all ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    /// Replaces `buffer[0..<count]` with its elementwise sum over all ranks.
    func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Replaces `buffer[0..<count]` with its elementwise maximum over all ranks.
    func allreduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int)
    /// Starts an in-place sum over ranks and returns at once; the buffer must stay untouched and alive until
    /// `wait` returns. Every rank must start the same reductions in the same order.
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction
    /// Replaces `buffer[0..<count]`, 16-bit floats in `format`, with their sum over all ranks. Each addition
    /// widens both operands to Float, adds, and rounds the sum back to `format` (to nearest even), so a sum
    /// over n ranks has gone through n − 1 such roundings, in an order MPI's algorithm picks; every rank gets
    /// the same bits.
    func allreduceSum(_ buffer: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat)
    /// `allreduceSum` of 16-bit floats, started as `startAllreduceSum` of Floats is.
    func startAllreduceSum(_ buffer: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat) -> PendingReduction
    /// Blocks until a started reduction has completed (a second wait on the same one returns at once).
    func wait(_ pending: PendingReduction)
    /// Blocks until all of `pending` have completed.
    func waitAll(_ pending: [PendingReduction])
    /// Lets started reductions advance without blocking and reports whether `pending` has completed. Open MPI
    /// moves non-blocking collectives only inside MPI calls, so a trainer overlapping backward with
    /// communication calls this between layers.
    @discardableResult func progress(_ pending: PendingReduction) -> Bool
    /// Copies `bytes` bytes at `buffer` from rank `root` to every other rank.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int)
    /// Gathers one small byte string from each rank; element r of the result came from rank r.
    func allgather(_ bytes: [UInt8]) -> [[UInt8]]
    /// Returns when every rank has called it.
    func barrier()
    /// Prints `message` as one line on stderr (from this rank only) and ends the whole job with status 1.
    func abort(_ message: String) -> Never
    /// Shuts the communicator down; call once at the end, after the last collective.
    func finalize()
}

extension Communicator {
    /// A group of one sums nothing: the buffer is already the sum (communicators of several ranks implement it).
    public func allreduceSum(_ buffer: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat) {
        precondition(size == 1, "\(type(of: self)) has no 16-bit allreduce for \(size) ranks")
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat) -> PendingReduction {
        precondition(size == 1, "\(type(of: self)) has no 16-bit allreduce for \(size) ranks")
        return PendingReduction()
    }

    /// Waits for each reduction in turn.
    public func waitAll(_ pending: [PendingReduction]) {
        for reduction in pending { wait(reduction) }
    }

    /// Without a library that progresses in the background there is nothing to advance.
    @discardableResult public func progress(_ pending: PendingReduction) -> Bool { pending.isComplete }

    /// True on the rank that prints, logs and writes files.
    public var isRoot: Bool { rank == 0 }
}

/// A reduction started by `startAllreduceSum`, completed by `wait`. Opaque to callers: a communicator that
/// needs more (MPI's request handles) keeps it in a subclass of its own.
public class PendingReduction {
    /// True once `wait` has returned for this reduction.
    public internal(set) var isComplete: Bool

    /// A reduction with nothing to wait for (a group of one) unless `isComplete` is false.
    init(isComplete: Bool = true) {
        self.isComplete = isComplete
    }
}

/// True when this process was started by a launcher that gives it a place in a world of ranks
/// (Open MPI's mpirun, or srun / another PMI/PMIx launcher).
public func launchedByMPI(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
    ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"].contains { environment[$0] != nil }
}

/// MPI when launched by mpirun/srun (env OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE present), else a single
/// process that makes no MPI calls at all, so the plain binary runs where MPI cannot start.
public func makeCommunicator() -> Communicator {
    launchedByMPI() ? MPICommunicator() : SingleProcessCommunicator()
}
