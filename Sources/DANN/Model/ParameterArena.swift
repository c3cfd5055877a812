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

    /// Where the two arenas of `count` Floats each live when the caller provides them: zeroed, and alive as long
    /// as the arena.
    public typealias Storage = (_ count: Int) throws -> (parameters: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>)?

    /// Lays the tensors out in order. `storage`, when given, provides the arenas (node-shared memory, §3.12), or
    /// returns nil to let the arena allocate its own, zeroed.
    public init(_ specs: [(name: String, shape: [Int])], storage allocate: Storage? = nil) rethrows {
        var offset = 0
        var entries: [Entry] = []
        for spec in specs {
            entries.append(Entry(name: spec.name, shape: spec.shape, offset: offset))
            offset += spec.shape.reduce(1, *)
        }
        self.entries = entries
        count = offset
        if let provided = try allocate?(offset) {
            storage = nil
            (parameters, gradients) = provided
        } else {
            let buffers = (FloatBuffer(capacity: offset), FloatBuffer(capacity: offset))
            storage = buffers
            parameters = buffers.0.pointer
            gradients = buffers.1.pointer
            parameters.update(repeating: 0, count: max(offset, 1))
            gradients.update(repeating: 0, count: max(offset, 1))
        }
    }

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
