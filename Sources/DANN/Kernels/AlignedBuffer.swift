#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A 64-byte-aligned buffer of trivial values that reallocates only when asked to grow, so a training
/// loop that sees the same batch size every step allocates nothing after its first step. It can also stand for
/// memory it does not own (a node-shared segment, §3.12), which it then neither frees nor grows.
public final class AlignedBuffer<Element> {
    public private(set) var pointer: UnsafeMutablePointer<Element>
    public private(set) var capacity: Int
    private let owned: Bool

    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        self.pointer = AlignedBuffer.allocate(self.capacity)
        owned = true
    }

    /// `capacity` elements at `memory`, which must outlive the buffer.
    public init(borrowing memory: UnsafeMutablePointer<Element>, capacity: Int) {
        pointer = memory
        self.capacity = capacity
        owned = false
    }

    deinit { if owned { free(pointer) } }

    /// Makes room for `count` elements; the contents are undefined after a reallocation.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Element> {
        if count > capacity {
            precondition(owned, "a borrowed buffer of \(capacity) cannot grow to \(count)")
            free(pointer)
            capacity = count
            pointer = AlignedBuffer.allocate(count)
        }
        return pointer
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Element> {
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, count * MemoryLayout<Element>.stride) == 0, let raw else {
            fatalError("out of memory allocating \(count) × \(MemoryLayout<Element>.stride) bytes")
        }
        return raw.bindMemory(to: Element.self, capacity: count)
    }
}

public typealias FloatBuffer = AlignedBuffer<Float>
public typealias IndexBuffer = AlignedBuffer<Int32>
