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
    private let storage: (FloatBuffer, FloatBuffer)

    public init(_ specs: [(name: String, shape: [Int])]) {
        var offset = 0
        var entries: [Entry] = []
        for spec in specs {
            entries.append(Entry(name: spec.name, shape: spec.shape, offset: offset))
            offset += spec.shape.reduce(1, *)
        }
        self.entries = entries
        count = offset
        storage = (FloatBuffer(capacity: offset), FloatBuffer(capacity: offset))
        parameters = storage.0.pointer
        gradients = storage.1.pointer
        parameters.update(repeating: 0, count: max(offset, 1))
        gradients.update(repeating: 0, count: max(offset, 1))
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
