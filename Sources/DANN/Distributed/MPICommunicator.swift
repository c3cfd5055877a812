import CMPI
import Foundation

/// A reduction started with MPI_Iallreduce: the requests of its chunks (cleared by `wait`). MPI's types stay
/// in this file; the trainer sees a `PendingReduction`.
final class MPIPendingReduction: PendingReduction {
    var requests: [MPI_Request?]

    init(requests: [MPI_Request?]) {
        self.requests = requests
        super.init(isComplete: requests.isEmpty)
    }
}

/// The communicator over Open MPI's MPI_COMM_WORLD. Works under mpirun/srun and as a singleton (a plain
/// process calling MPI_Init). MPI calls come only from the thread that created it (MPI_THREAD_FUNNELED).
/// Errors inside MPI use MPI's default handler, which ends the job with MPI's own message.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    public let localRank: Int
    public let localSize: Int
    public let hostname: String

    /// Largest element count passed to one MPI call; bigger buffers are split, since MPI counts are `int`.
    /// Settable so tests can exercise the splitting on small buffers.
    public var maximumCountPerCall: Int = Int(Int32.max)

    private let world: MPI_Comm
    private var finalized = false
    /// The 16-bit sums (`HalfSum.swift`), created on first use; MPI_Op_create is local, not collective.
    private var halfSums: [HalfFormat: MPI_Op] = [:]

    /// Initialises MPI (unless something already did) and reads this process's place in the world and on its node.
    public init() {
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        if initialized == 0 {
            Self.preferRingForNonBlockingAllreduce()
            var provided: Int32 = 0
            MPI_Init_thread(nil, nil, dann_mpi_thread_funneled(), &provided)
        }
        world = dann_mpi_comm_world()
        var value: Int32 = 0
        MPI_Comm_rank(world, &value)
        rank = Int(value)
        MPI_Comm_size(world, &value)
        size = Int(value)

        // Ranks sharing memory are the ranks on this node; they split its cores between them.
        var node: MPI_Comm? = dann_mpi_comm_null()
        MPI_Comm_split_type(world, dann_mpi_comm_type_shared(), Int32(rank), dann_mpi_info_null(), &node)
        MPI_Comm_rank(node, &value)
        localRank = Int(value)
        MPI_Comm_size(node, &value)
        localSize = Int(value)
        MPI_Comm_free(&node)

        hostname = currentHostname()
    }

    /// Open MPI 4.1's libnbc picks a binomial tree (reduce to rank 0, then broadcast) for every in-place
    /// MPI_Iallreduce on fewer than 4 ranks, which measured about twice as slow as the blocking allreduce on
    /// the 33M-float gradient here; its ring algorithm matches the blocking one and gives every rank the same
    /// bits. An explicit setting in the environment (or mpirun --mca) still wins.
    private static func preferRingForNonBlockingAllreduce() {
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0)
    }

    /// Calls `body(offset, count)` for consecutive chunks of at most `maximumCountPerCall` elements.
    private func forEachChunk(_ count: Int, _ body: (Int, Int32) -> Void) {
        precondition(count >= 0, "negative element count \(count)")
        let limit = max(1, min(maximumCountPerCall, Int(Int32.max)))
        var offset = 0
        while offset < count {
            let chunk = min(limit, count - offset)
            body(offset, Int32(chunk))
            offset += chunk
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        forEachChunk(count) { offset, chunk in
            MPI_Allreduce(dann_mpi_in_place(), buffer + offset, chunk, dann_mpi_float(), dann_mpi_sum(), world)
        }
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        forEachChunk(count) { offset, chunk in
            MPI_Allreduce(dann_mpi_in_place(), buffer + offset, chunk, dann_mpi_double(), dann_mpi_sum(), world)
        }
    }

    public func allreduceMax(_ buffer: UnsafeMutablePointer<Double>, count: Int) {
        forEachChunk(count) { offset, chunk in
            MPI_Allreduce(dann_mpi_in_place(), buffer + offset, chunk, dann_mpi_double(), dann_mpi_max(), world)
        }
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) -> PendingReduction {
        var requests: [MPI_Request?] = []
        forEachChunk(count) { offset, chunk in
            var request: MPI_Request? = dann_mpi_request_null()
            MPI_Iallreduce(dann_mpi_in_place(), buffer + offset, chunk, dann_mpi_float(), dann_mpi_sum(), world, &request)
            requests.append(request)
        }
        return MPIPendingReduction(requests: requests)
    }

    public func allreduceSum(_ buffer: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat) {
        let op = halfSum(format)
        forEachChunk(count) { offset, chunk in
            MPI_Allreduce(dann_mpi_in_place(), buffer + offset, chunk, dann_mpi_uint16(), op, world)
        }
    }

    public func startAllreduceSum(_ buffer: UnsafeMutablePointer<UInt16>, count: Int, format: HalfFormat) -> PendingReduction {
        let op = halfSum(format)
        var requests: [MPI_Request?] = []
        forEachChunk(count) { offset, chunk in
            var request: MPI_Request? = dann_mpi_request_null()
            MPI_Iallreduce(dann_mpi_in_place(), buffer + offset, chunk, dann_mpi_uint16(), op, world, &request)
            requests.append(request)
        }
        return MPIPendingReduction(requests: requests)
    }

    /// The commutative user-defined MPI_Op that sums 16-bit floats of `format` (the elements travel as
    /// MPI_UINT16_T; only the op gives them meaning).
    private func halfSum(_ format: HalfFormat) -> MPI_Op {
        if let op = halfSums[format] { return op }
        var op: MPI_Op? = dann_mpi_op_null()
        MPI_Op_create(HalfSum.function(format), 1, &op)
        guard let op else { preconditionFailure("MPI_Op_create gave no operation for \(format)") }
        halfSums[format] = op
        return op
    }

    /// The MPI side of a reduction this communicator started.
    private func started(_ pending: PendingReduction) -> MPIPendingReduction {
        guard let started = pending as? MPIPendingReduction else {
            preconditionFailure("a reduction that MPICommunicator.startAllreduceSum did not start")
        }
        return started
    }

    public func wait(_ pending: PendingReduction) {
        guard !pending.isComplete else { return }
        let pending = started(pending)
        pending.requests.withUnsafeMutableBufferPointer { requests in
            _ = MPI_Waitall(Int32(requests.count), requests.baseAddress, dann_mpi_statuses_ignore())
        }
        pending.requests = []
        pending.isComplete = true
    }

    @discardableResult public func progress(_ pending: PendingReduction) -> Bool {
        guard !pending.isComplete else { return true }
        let pending = started(pending)
        var done: Int32 = 0
        pending.requests.withUnsafeMutableBufferPointer { requests in
            _ = MPI_Testall(Int32(requests.count), requests.baseAddress, &done, dann_mpi_statuses_ignore())
        }
        if done != 0 {
            pending.requests = []
            pending.isComplete = true
        }
        return done != 0
    }

    public func waitAll(_ pending: [PendingReduction]) {
        var requests = pending.filter { !$0.isComplete }.flatMap { started($0).requests }
        if !requests.isEmpty {
            requests.withUnsafeMutableBufferPointer { buffer in
                _ = MPI_Waitall(Int32(buffer.count), buffer.baseAddress, dann_mpi_statuses_ignore())
            }
        }
        for reduction in pending where !reduction.isComplete {
            started(reduction).requests = []
            reduction.isComplete = true
        }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) {
        precondition((0..<size).contains(root), "broadcast root \(root) outside 0..<\(size)")
        forEachChunk(bytes) { offset, chunk in
            MPI_Bcast(buffer + offset, chunk, dann_mpi_byte(), Int32(root), world)
        }
    }

    public func allgather(_ bytes: [UInt8]) -> [[UInt8]] {
        var lengths = [Int64](repeating: 0, count: size)
        var myLength = Int64(bytes.count)
        MPI_Allgather(&myLength, 1, dann_mpi_int64(), &lengths, 1, dann_mpi_int64(), world)
        let total = lengths.reduce(0, +)
        precondition(total <= Int64(Int32.max), "allgather of \(total) bytes is too large for one call")
        let counts = lengths.map { Int32($0) }
        var displacements = [Int32](repeating: 0, count: size)
        for index in 1..<max(1, size) { displacements[index] = displacements[index - 1] + counts[index - 1] }
        // One spare byte keeps the base addresses valid when everything is empty.
        var gathered = [UInt8](repeating: 0, count: Int(total) + 1)
        var send = bytes + [0]
        MPI_Allgatherv(&send, Int32(bytes.count), dann_mpi_byte(), &gathered, counts, displacements, dann_mpi_byte(), world)
        return (0..<size).map { index in
            let start = Int(displacements[index])
            return Array(gathered[start..<(start + Int(counts[index]))])
        }
    }

    public func barrier() {
        MPI_Barrier(world)
    }

    public func abort(_ message: String) -> Never {
        FileHandle.standardError.write(Data((message + "\n").utf8))
        MPI_Abort(world, 1)
        exit(1)
    }

    public func finalize() {
        guard !finalized else { return }
        finalized = true
        var alreadyFinalized: Int32 = 0
        MPI_Finalized(&alreadyFinalized)
        guard alreadyFinalized == 0 else { return }
        for op in halfSums.values {
            var freed: MPI_Op? = op
            MPI_Op_free(&freed)
        }
        halfSums.removeAll()
        MPI_Finalize()
    }
}
