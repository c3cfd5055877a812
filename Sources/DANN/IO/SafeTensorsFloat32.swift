extension TensorEntry {
    /// An F32 tensor copied from `values`, whose count must equal the shape's element count.
    public init(name: String, shape: [Int], float32 values: UnsafeBufferPointer<Float>) {
        precondition(values.count == shape.reduce(1, *), "TensorEntry '\(name)': \(values.count) values for shape \(shape)")
        self.init(name: name, dtype: "F32", shape: shape, data: Array(UnsafeRawBufferPointer(values)))
    }

    /// An F32 tensor from an array (convenience for small tensors and tests).
    public init(name: String, shape: [Int], float32 values: [Float]) {
        self = values.withUnsafeBufferPointer { TensorEntry(name: name, shape: shape, float32: $0) }
    }

    /// An F64 tensor from an array (momentum statistics, schedules' state and the like).
    public init(name: String, shape: [Int], float64 values: [Double]) {
        precondition(values.count == shape.reduce(1, *), "TensorEntry '\(name)': \(values.count) values for shape \(shape)")
        self.init(name: name, dtype: "F64", shape: shape, data: values.withUnsafeBytes { Array($0) })
    }

    /// An I64 tensor from an array (step counters, RNG state, permutations).
    public init(name: String, shape: [Int], int64 values: [Int64]) {
        precondition(values.count == shape.reduce(1, *), "TensorEntry '\(name)': \(values.count) values for shape \(shape)")
        self.init(name: name, dtype: "I64", shape: shape, data: values.withUnsafeBytes { Array($0) })
    }

    /// Copies an F32 tensor into `destination` after checking dtype and shape; `path` names the file in errors.
    public func copyFloat32(into destination: UnsafeMutableBufferPointer<Float>, expectedShape: [Int], path: String) throws {
        guard dtype == "F32" else {
            throw DANNError.file(path, "tensor '\(name)' has dtype \(dtype), expected F32")
        }
        guard shape == expectedShape else {
            throw DANNError.file(path, "tensor '\(name)' has shape \(shape), expected \(expectedShape)")
        }
        guard destination.count == elementCount else {
            throw DANNError.file(path, "tensor '\(name)' has \(elementCount) elements but the destination holds \(destination.count)")
        }
        data.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: source)
        }
        // A NaN or infinity loaded here would surface steps later as "the loss is nan", far from its cause.
        if let index = destination.firstIndex(where: { !$0.isFinite }) {
            throw DANNError.file(path, "tensor '\(name)' holds a non-finite value (\(destination[index]) at element \(index))")
        }
    }

    /// Copies the bytes out element-wise, so the [UInt8] storage's alignment never matters.
    private func values<T>(of type: T.Type) -> [T] {
        let count = data.count / MemoryLayout<T>.stride
        return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<(count * MemoryLayout<T>.stride)])) }
            initialized = count
        }
    }

    /// The elements of an F32 tensor, or nil for another dtype.
    public var float32Values: [Float]? {
        guard dtype == "F32" else { return nil }
        return values(of: Float.self)
    }

    /// The elements of an F64 tensor, or nil for another dtype.
    public var float64Values: [Double]? {
        guard dtype == "F64" else { return nil }
        return values(of: Double.self)
    }

    /// The elements of an I64 tensor, or nil for another dtype.
    public var int64Values: [Int64]? {
        guard dtype == "I64" else { return nil }
        return values(of: Int64.self)
    }
}

extension SafeTensors {
    /// Copies the F32 tensor `name` of a file just read into `destination`, checking that it exists and has
    /// `shape`; errors name `path`.
    public static func copyFloat32(_ name: String, from tensors: [String: TensorEntry], into destination: UnsafeMutableBufferPointer<Float>,
                                   shape: [Int], path: String) throws {
        guard let tensor = tensors[name] else {
            throw DANNError.file(path, "no tensor named '\(name)'")
        }
        try tensor.copyFloat32(into: destination, expectedShape: shape, path: path)
    }
}
