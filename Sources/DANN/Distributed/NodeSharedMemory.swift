#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Memory that the ranks of one node map into each of their address spaces (docs/design.md §3.12): each rank
/// owns a segment and reads and writes the others' segments directly. `--allreduce shared` keeps the ranks'
/// gradient arenas there, and one parameter arena that all of them use, so summing the gradients is a read of the
/// peers' memory and the updated parameters need no copying. The segments are POSIX shared-memory objects
/// (/dev/shm), unlinked as soon as every rank has mapped them, so nothing is left behind however the job ends.
public final class NodeSharedMemory {
    /// This rank's index among the ranks that share the memory, and their number.
    public let rank: Int
    public let size: Int
    private let segments: [UnsafeMutablePointer<Float>]
    private let bytes: [Int]
    private let communicator: Communicator

    /// Maps, on every rank of `communicator`, each rank's segment of zeroed Floats (`floats` as given by that
    /// rank; it may differ between ranks, and be 0), or returns nil when there is nothing to share (one rank) or
    /// the ranks are not all on this node. Collective. Throws (on every rank) when the system refuses the memory.
    public static func make(_ communicator: Communicator, floats: Int) throws -> NodeSharedMemory? {
        guard communicator.size > 1, communicator.localSize == communicator.size else { return nil }
        // Rank 0 picks the names' stem (its pid and the clock), so two jobs on one node never collide.
        var stem = [Int64(getpid()), Int64(bitPattern: realtimeNanoseconds())]
        communicator.broadcast(&stem, bytes: 16, root: 0)
        var sizes = [Double](repeating: 0, count: communicator.size)
        sizes[communicator.rank] = Double(max(4096, (floats * 4 + 4095) & ~4095))
        communicator.allreduceSum(&sizes, count: sizes.count)
        let bytes = sizes.map { Int($0) }
        func name(_ r: Int) -> String { "/dann-dist.\(stem[0]).\(stem[1]).\(r)" }

        var failure: String? = nil
        var mapped: [UnsafeMutablePointer<Float>?] = Array(repeating: nil, count: communicator.size)
        let mine = name(communicator.rank)
        // A new object reads as zeros: no rank needs to clear it (and none may, once others use it). Its pages are
        // reserved now, so that a /dev/shm too small for them (containers often give 64 MB) is an error here
        // rather than a SIGBUS at the first touch of a page the tmpfs cannot supply.
        let descriptor = shm_open(mine, O_CREAT | O_EXCL | O_RDWR, 0o600)
        if descriptor < 0 || ftruncate(descriptor, off_t(bytes[communicator.rank])) != 0 {
            failure = "shared memory \(mine): \(String(cString: strerror(errno)))"
        } else if case let code = posix_fallocate(descriptor, 0, off_t(bytes[communicator.rank])), code != 0 {
            failure = "shared memory: cannot reserve \(bytes[communicator.rank] >> 20) MB in /dev/shm: \(String(cString: strerror(code)))"
        }
        if descriptor >= 0 { close(descriptor) }
        // Unlinked on the way out, by then every rank has mapped it (or all are giving up).
        defer { if descriptor >= 0 { shm_unlink(mine) } }
        try agree(communicator, failure)     // every segment exists before anyone opens one
        for r in 0..<communicator.size where failure == nil {
            let fd = shm_open(name(r), O_RDWR, 0)
            let address = fd < 0 ? MAP_FAILED : mmap(nil, bytes[r], PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if fd >= 0 { close(fd) }
            if address == MAP_FAILED || address == nil {
                failure = "shared memory \(name(r)): \(String(cString: strerror(errno)))"
            } else {
                mapped[r] = address!.bindMemory(to: Float.self, capacity: bytes[r] / 4)
            }
        }
        let shared = failure == nil
        defer {
            if !shared { for (r, address) in mapped.enumerated() { if let address { munmap(address, bytes[r]) } } }
        }
        try agree(communicator, failure)     // every rank has mapped every segment: the names can go
        return NodeSharedMemory(rank: communicator.rank, segments: mapped.map { $0! }, bytes: bytes, communicator: communicator)
    }

    private init(rank: Int, segments: [UnsafeMutablePointer<Float>], bytes: [Int], communicator: Communicator) {
        self.rank = rank
        size = segments.count
        self.segments = segments
        self.bytes = bytes
        self.communicator = communicator
    }

    deinit {
        for (address, length) in zip(segments, bytes) { munmap(address, length) }
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
