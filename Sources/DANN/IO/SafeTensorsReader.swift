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
        guard bytes[8..<headerEnd].first == UInt8(ascii: "{") else {
            throw SafeTensorsProblem("header does not start with '{' (not a safetensors file)")
        }
        let (metadata, layouts) = try Header.decode(Data(bytes[8..<headerEnd]))

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

    fileprivate struct Layout {
        let name: String
        let dtype: String
        let shape: [Int]
        let begin: Int
        let end: Int
    }
}

/// The header JSON read by `JSONDecoder`. Safetensors forbids a name twice, but JSONDecoder keeps one of
/// duplicate keys without a word; its custom key strategy, though, is called for every key as the file
/// spells it, in file order, so `KeyLog` sees the duplicates (and gives the order the checks run in).
private struct Header: Decodable {
    var metadata: [String: String] = [:]
    var layouts: [SafeTensors.Layout] = []

    /// Every key path the decoder met, in file order (duplicates included).
    final class KeyLog: @unchecked Sendable {   // written and read by the one decoding thread
        static let userInfoKey = CodingUserInfoKey(rawValue: "SafeTensors.KeyLog")!
        var topLevel: [String] = []
    }

    struct Name: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    enum Field: String, CodingKey {
        case dtype, shape, data_offsets
    }

    static func decode(_ json: Data) throws -> (metadata: [String: String], layouts: [SafeTensors.Layout]) {
        let log = KeyLog()
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in
            if path.count == 1 { log.topLevel.append(path[0].stringValue) }
            return path[path.count - 1]
        }
        decoder.userInfo[KeyLog.userInfoKey] = log
        do {
            let header = try decoder.decode(Header.self, from: json)
            return (header.metadata, header.layouts)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            // A syntax error: JSONDecoder says only "not valid JSON"; JSONSerialization says what and where.
            var detail = context.debugDescription
            do { _ = try JSONSerialization.jsonObject(with: json) } catch {
                detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? detail
            }
            throw SafeTensorsProblem("bad header JSON: \(detail)")
        } catch let error as DecodingError {
            throw SafeTensorsProblem("bad header JSON: \(error)")
        }
    }

    init(from decoder: Decoder) throws {
        let log = decoder.userInfo[KeyLog.userInfoKey] as! KeyLog
        let object = try decoder.container(keyedBy: Name.self)
        var seen = Set<String>()
        for name in log.topLevel {
            guard seen.insert(name).inserted else { throw SafeTensorsProblem("header names '\(name)' twice") }
            if name == SafeTensors.metadataKey {
                metadata = try Self.metadata(object)
            } else {
                layouts.append(try Self.layout(name, object))
            }
        }
    }

    private static func metadata(_ object: KeyedDecodingContainer<Name>) throws -> [String: String] {
        let key = SafeTensors.metadataKey
        guard let entries = try? object.nestedContainer(keyedBy: Name.self, forKey: Name(stringValue: key)) else {
            throw SafeTensorsProblem("\(key) is not an object")
        }
        var metadata: [String: String] = [:]
        for field in entries.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
            guard let text = try? entries.decode(String.self, forKey: field) else {
                throw SafeTensorsProblem("\(key) value of '\(field.stringValue)' is not a string")
            }
            metadata[field.stringValue] = text
        }
        return metadata
    }

    private static func layout(_ name: String, _ object: KeyedDecodingContainer<Name>) throws -> SafeTensors.Layout {
        guard let fields = try? object.nestedContainer(keyedBy: Field.self, forKey: Name(stringValue: name)) else {
            throw SafeTensorsProblem("entry of tensor '\(name)' is not an object")
        }
        func present(_ key: Field) throws {
            guard fields.contains(key) else { throw SafeTensorsProblem("tensor '\(name)' has no \(key.stringValue)") }
        }
        func integers(_ key: Field) throws -> [Int] {
            try present(key)
            guard let numbers = try? fields.decode([Int].self, forKey: key), numbers.allSatisfy({ $0 >= 0 }) else {
                if (try? fields.nestedUnkeyedContainer(forKey: key)) == nil {
                    throw SafeTensorsProblem("\(key.stringValue) of tensor '\(name)' is not an array")
                }
                throw SafeTensorsProblem("\(key.stringValue) of tensor '\(name)' holds something other than a non-negative integer")
            }
            return numbers
        }
        try present(.dtype)
        guard let dtype = try? fields.decode(String.self, forKey: .dtype) else {
            throw SafeTensorsProblem("dtype of tensor '\(name)' is not a string")
        }
        guard let elementSize = SafeTensors.dtypeSizes[dtype] else {
            throw SafeTensorsProblem("tensor '\(name)' has unknown dtype '\(dtype)'")
        }
        let shape = try integers(.shape)
        let offsets = try integers(.data_offsets)
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
        return SafeTensors.Layout(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
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
