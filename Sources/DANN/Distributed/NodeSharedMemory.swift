#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Memory that the ranks of one node map into each of their address spaces (docs/design.md §3.12): each rank
/// owns a segment of the same length and reads the others' segments directly. `--allreduce shared` keeps the
/// parameter and gradient arenas there, so summing the ranks' gradients is a read of the peers' memory, not a
/// copy through MPI's buffers. The segments are POSIX shared-memory objects (/dev/shm), unlinked as soon as
/// every rank has mapped them, so nothing is left behind when the job ends, however it ends.
public final class NodeSharedMemory {
    /// This rank's index among the ranks that share the memory, and their number.
    public let rank: Int
    public let size: Int
    /// Floats in each rank's segment.
    public let floatsPerRank: Int
    private let segments: [UnsafeMutablePointer<Float>]
    private let bytesPerSegment: Int
    private let communicator: Communicator

    /// Maps a segment of `floatsPerRank` zeroed Floats for each rank of `communicator`, or returns nil when
    /// there is nothing to share (one rank) or the ranks are not all on this node. Collective. Throws when the
    /// operating system refuses the memory.
    public static func make(_ communicator: Communicator, floatsPerRank: Int) throws -> NodeSharedMemory? {
        guard communicator.size > 1, communicator.localSize == communicator.size else { return nil }
        // Rank 0 picks the names' stem (its pid and the clock), so two jobs on one node never collide.
        var stem = [Int64(getpid()), Int64(realtimeNanoseconds())]
        communicator.broadcast(&stem, bytes: 16, root: 0)
        let bytes = max(4096, (floatsPerRank * 4 + 4095) & ~4095)
        func name(_ r: Int) -> String { "/dann-dist.\(stem[0]).\(stem[1]).\(r)" }

        var failure: String? = nil
        var mapped: [UnsafeMutablePointer<Float>?] = Array(repeating: nil, count: communicator.size)
        let mine = name(communicator.rank)
        let descriptor = shm_open(mine, O_CREAT | O_EXCL | O_RDWR, 0o600)
        if descriptor < 0 || ftruncate(descriptor, off_t(bytes)) != 0 {
            failure = "shared memory \(mine): \(String(cString: strerror(errno)))"
        }
        if descriptor >= 0 { close(descriptor) }
        // Unlinked on the way out, by then every rank has mapped it (or all are giving up).
        defer { if descriptor >= 0 { shm_unlink(mine) } }
        try agree(communicator, failure)     // every segment exists before anyone opens one
        for r in 0..<communicator.size where failure == nil {
            let fd = shm_open(name(r), O_RDWR, 0)
            let address = fd < 0 ? MAP_FAILED : mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if fd >= 0 { close(fd) }
            if address == MAP_FAILED || address == nil {
                failure = "shared memory \(name(r)): \(String(cString: strerror(errno)))"
            } else {
                mapped[r] = address!.bindMemory(to: Float.self, capacity: bytes / 4)
            }
        }
        let shared = failure == nil
        defer {
            if !shared { for case let address? in mapped { munmap(address, bytes) } }
        }
        try agree(communicator, failure)     // every rank has mapped every segment: the names can go
        return NodeSharedMemory(rank: communicator.rank, floatsPerRank: floatsPerRank, segments: mapped.map { $0! },
                                bytesPerSegment: bytes, communicator: communicator)
    }

    private init(rank: Int, floatsPerRank: Int, segments: [UnsafeMutablePointer<Float>], bytesPerSegment: Int,
                 communicator: Communicator) {
        self.rank = rank
        size = segments.count
        self.floatsPerRank = floatsPerRank
        self.segments = segments
        self.bytesPerSegment = bytesPerSegment
        self.communicator = communicator
    }

    deinit {
        for address in segments { munmap(address, bytesPerSegment) }
    }

    /// Rank r's segment.
    public func segment(_ r: Int) -> UnsafeMutablePointer<Float> { segments[r] }

    /// This rank's segment.
    public var own: UnsafeMutablePointer<Float> { segments[rank] }

    /// Returns when every rank has called it; afterwards each sees everything all ranks stored before calling it.
    /// Collective.
    public func synchronize() {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        communicator.barrier()
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }

    /// The part of `count` elements that rank r of `size` updates: contiguous, in rank order, every inner
    /// boundary a multiple of 16 floats (a cache line), so no two ranks write the same line.
    public static func shard(_ r: Int, of size: Int, count: Int) -> Range<Int> {
        precondition(size > 0 && (0..<size).contains(r), "shard \(r) of \(size)")
        func boundary(_ k: Int) -> Int { k == size ? count : (count * k / size) & ~15 }
        return boundary(r)..<boundary(r + 1)
    }

    /// Throws the first rank's failure on every rank (collective), so that all give up together.
    private static func agree(_ communicator: Communicator, _ failure: String?) throws {
        var flags = [Double](repeating: 0, count: communicator.size)
        if failure != nil { flags[communicator.rank] = 1 }
        communicator.allreduceSum(&flags, count: flags.count)
        guard let first = flags.firstIndex(where: { $0 > 0 }) else { return }
        if let failure, first == communicator.rank { throw DANNError(failure) }
        throw DANNError("rank \(first) could not set up shared memory for --allreduce shared")
    }
}

/// Nanoseconds of the realtime clock (names a job's shared-memory objects).
private func realtimeNanoseconds() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}
