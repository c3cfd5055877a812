import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension SafeTensors {
    /// Headers of real checkpoints are a few kilobytes; the cap stops a corrupt length from allocating gigabytes.
    static let maximumHeaderBytes = 100_000_000

    /// Reads and validates a whole safetensors file. Tensors come back by name, with `order` giving the order
    /// of their data in the file. Any inconsistency is a `DANNError.file(path, …)`.
    public static func read(path: String) throws -> (tensors: [String: TensorEntry], order: [String], metadata: [String: String]) {
        let bytes = try readWholeFile(path)
        do {
            return try decode(bytes)
        } catch let problem as SafeTensorsProblem {
            throw DANNError.file(path, problem.message)
        }
    }

    /// The file's bytes, read straight into an array (checkpoints are ~130 MB; no intermediate `Data` copy).
    static func readWholeFile(_ path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw DANNError.file(path, errno == ENOENT ? "no such file" : "cannot open (\(String(cString: strerror(errno))))")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0, (status.st_mode & S_IFMT) == S_IFREG else {
            throw DANNError.file(path, "not a regular file")
        }
        let size = Int(status.st_size)
        var failure: String?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            while initialized < size {
                let result = systemRead(descriptor, buffer.baseAddress! + initialized, size - initialized)
                if result < 0, errno == EINTR { continue }
                if result < 0 { failure = "read failed (\(String(cString: strerror(errno))))"; break }
                if result == 0 { failure = "file shrank while being read"; break }
                initialized += result
            }
        }
        if let failure { throw DANNError.file(path, failure) }
        return bytes
    }

    /// Validates and splits an in-memory safetensors file (see `read(path:)`).
    static func decode(_ bytes: [UInt8]) throws -> (tensors: [String: TensorEntry], order: [String], metadata: [String: String]) {
        guard bytes.count >= 8 else {
            throw SafeTensorsProblem("file of \(bytes.count) bytes is too short for a safetensors header")
        }
        var headerLength: UInt64 = 0
        for index in (0..<8).reversed() { headerLength = headerLength << 8 | UInt64(bytes[index]) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw SafeTensorsProblem("header length \(headerLength) exceeds the \(bytes.count - 8) bytes after it (truncated or not safetensors)")
        }
        guard headerLength <= UInt64(maximumHeaderBytes) else {
            throw SafeTensorsProblem("header length \(headerLength) is implausibly large")
        }
        let headerEnd = 8 + Int(headerLength)
        let header = Array(bytes[8..<headerEnd])
        guard header.first == UInt8(ascii: "{") else {
            throw SafeTensorsProblem("header does not start with '{' (not a safetensors file)")
        }
        let json: SafeTensorsJSON.Value
        do {
            json = try SafeTensorsJSON.parse(header)
        } catch let error as SafeTensorsJSON.ParseError {
            throw SafeTensorsProblem("bad header JSON: \(error.message)")
        }
        guard case .object(let members) = json else {
            throw SafeTensorsProblem("header JSON is not an object")
        }

        var metadata: [String: String] = [:]
        var layouts: [Layout] = []
        var seen = Set<String>()
        for (key, value) in members {
            guard seen.insert(key).inserted else { throw SafeTensorsProblem("header names '\(key)' twice") }
            if key == metadataKey {
                metadata = try parseMetadata(value)
            } else {
                layouts.append(try parseLayout(name: key, value))
            }
        }

        let dataSize = bytes.count - headerEnd
        // The data region must be tiled exactly: sorted by start, each tensor begins where the previous ended.
        let sorted = layouts.sorted { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var cursor = 0
        for layout in sorted {
            if layout.begin > cursor {
                throw SafeTensorsProblem("gap in data before tensor '\(layout.name)' (bytes \(cursor)..<\(layout.begin) unused)")
            }
            if layout.begin < cursor {
                throw SafeTensorsProblem("tensor '\(layout.name)' overlaps the previous tensor (starts at \(layout.begin), previous ends at \(cursor))")
            }
            cursor = layout.end
        }
        if cursor > dataSize {
            throw SafeTensorsProblem("truncated: tensors need \(cursor) data bytes but the file holds \(dataSize)")
        }
        if cursor < dataSize {
            throw SafeTensorsProblem("\(dataSize - cursor) unexpected bytes after the last tensor")
        }

        var tensors: [String: TensorEntry] = [:]
        for layout in sorted {
            let data = Array(bytes[(headerEnd + layout.begin)..<(headerEnd + layout.end)])
            tensors[layout.name] = TensorEntry(name: layout.name, dtype: layout.dtype, shape: layout.shape, data: data)
        }
        return (tensors, sorted.map(\.name), metadata)
    }

    private struct Layout {
        let name: String
        let dtype: String
        let shape: [Int]
        let begin: Int
        let end: Int
    }

    private static func parseMetadata(_ value: SafeTensorsJSON.Value) throws -> [String: String] {
        guard case .object(let members) = value else {
            throw SafeTensorsProblem("\(metadataKey) is not an object")
        }
        var metadata: [String: String] = [:]
        for (key, entry) in members {
            guard case .string(let text) = entry else {
                throw SafeTensorsProblem("\(metadataKey) value of '\(key)' is not a string")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseLayout(name: String, _ value: SafeTensorsJSON.Value) throws -> Layout {
        guard case .object(let fields) = value else {
            throw SafeTensorsProblem("entry of tensor '\(name)' is not an object")
        }
        func field(_ key: String) throws -> SafeTensorsJSON.Value {
            guard let found = fields.first(where: { $0.key == key }) else {
                throw SafeTensorsProblem("tensor '\(name)' has no \(key)")
            }
            return found.value
        }
        func integers(_ key: String) throws -> [Int] {
            guard case .array(let elements) = try field(key) else {
                throw SafeTensorsProblem("\(key) of tensor '\(name)' is not an array")
            }
            return try elements.map { element in
                guard case .number(let text) = element, let number = Int(text), number >= 0 else {
                    throw SafeTensorsProblem("\(key) of tensor '\(name)' holds something other than a non-negative integer")
                }
                return number
            }
        }
        guard case .string(let dtype) = try field("dtype") else {
            throw SafeTensorsProblem("dtype of tensor '\(name)' is not a string")
        }
        guard let elementSize = dtypeSizes[dtype] else {
            throw SafeTensorsProblem("tensor '\(name)' has unknown dtype '\(dtype)'")
        }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard offsets.count == 2, offsets[0] <= offsets[1] else {
            throw SafeTensorsProblem("data_offsets of tensor '\(name)' are not [begin, end] with begin <= end")
        }
        var byteCount = elementSize
        for dimension in shape {
            let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw SafeTensorsProblem("shape \(shape) of tensor '\(name)' is too large") }
            byteCount = product
        }
        guard byteCount == offsets[1] - offsets[0] else {
            throw SafeTensorsProblem("tensor '\(name)' of dtype \(dtype) and shape \(shape) needs \(byteCount) bytes but data_offsets span \(offsets[1] - offsets[0])")
        }
        return Layout(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
    }
}

private func systemRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.read(descriptor, buffer, count)
    #else
    return Darwin.read(descriptor, buffer, count)
    #endif
}

/// A problem found in safetensors bytes; `read(path:)` attaches the path.
struct SafeTensorsProblem: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
