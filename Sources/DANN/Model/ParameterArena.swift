/// All parameters of a model in one contiguous Float arena, and all gradients in a second arena with the
/// same layout, so that one allreduce, one optimizer loop or one file write covers every tensor.
public final class ParameterArena {
    /// A named tensor's place in the arenas (PyTorch state-dict name and shape).
    public struct Entry: Equatable, Sendable {
        public var name: String
        public var shape: [Int]
        public var offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let entries: [Entry]
    public let count: Int
    public let parameters: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    /// The arenas' memory when the arena allocated it (nil when the caller's `storage` provided it).
    private let storage: (FloatBuffer, FloatBuffer)?

    /// Lays the tensors out in order. `storage`, when given, is asked for `storageFloats(count:)` Floats that hold
    /// both arenas (memory shared between processes, §3.12) and must outlive the arena; it returns nil to let
    /// the arena allocate its own. Both arenas start zeroed.
    public init(_ specs: [(name: String, shape: [Int])],
                storage allocate: ((Int) throws -> UnsafeMutablePointer<Float>?)? = nil) rethrows {
        var offset = 0
        var entries: [Entry] = []
        for spec in specs {
            entries.append(Entry(name: spec.name, shape: spec.shape, offset: offset))
            offset += spec.shape.reduce(1, *)
        }
        self.entries = entries
        count = offset
        if let base = try allocate?(ParameterArena.storageFloats(count: offset)) {
            storage = nil
            parameters = base
            gradients = base + ParameterArena.storageFloats(count: offset) / 2
        } else {
            let buffers = (FloatBuffer(capacity: offset), FloatBuffer(capacity: offset))
            storage = buffers
            parameters = buffers.0.pointer
            gradients = buffers.1.pointer
        }
        parameters.update(repeating: 0, count: max(offset, 1))
        gradients.update(repeating: 0, count: max(offset, 1))
    }

    /// Floats of caller-provided storage for `count` parameters: the two arenas, each starting on a cache line.
    public static func storageFloats(count: Int) -> Int { 2 * ((max(count, 1) + 15) & ~15) }

    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    public func parameter(_ entry: Entry) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: parameters + entry.offset, count: entry.count)
    }

    public func gradient(_ entry: Entry) -> UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: gradients + entry.offset, count: entry.count)
    }

    public var parameterBuffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: parameters, count: count) }
    public var gradientBuffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: gradients, count: count) }
}
