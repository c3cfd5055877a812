import Foundation
import XCTest
@testable import DANN

/// Hostile dataset files: headers that promise more than the file holds, negative or zero dimensions,
/// lengths that overrun their element or archive, and damaged compressed streams. Each must end in one
/// `DANNError` line naming the file, never a trap, silent wrong data or an allocation sized by the header.
///
/// Peak memory is measured in a child `dann-dist data load` (or `predict`) process, read from wait4's
/// rusage: a reader that allocates before it checks would take the whole test process down (main aborted
/// on a 16 GiB allocation), this process's VmHWM carries every earlier test's peak, and
/// getrusage(RUSAGE_CHILDREN) is the largest of all children ever waited for; wait4 gives exactly one
/// child's (see `runMeasured` for why a python3 sits in between). The child runs under a 4 GB address-space
/// limit so that a regression fails the test instead of exhausting the machine.
final class HostileDataFileTests: XCTestCase {
    private var tmp: URL!
    override func setUp() { tmp = TestPaths.temporaryDirectory("hostile") }
    override func tearDown() { try? FileManager.default.removeItem(at: tmp) }

    /// Growth over a child that only fails "not found" (about 26 MB on this machine) allowed for a rejected
    /// file. The hostile files are at most a few hundred KB; on main these cases aborted or reached 3-4 GB.
    private static let allowedGrowthKiB = 64 * 1024

    // MARK: - Fixtures

    private func path(_ name: String) -> String { tmp.appendingPathComponent(name).path }

    private func write(_ bytes: [UInt8], _ name: String) throws -> String {
        let p = path(name)
        try FileManager.default.createDirectory(atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try DataFixtures.write(bytes, to: p)
        return p
    }

    /// gzip with the gzip tool, so the trailer under test is one an independent writer produced.
    private func gzip(_ bytes: [UInt8]) throws -> [UInt8] { [UInt8](try DataFixtures.run(["gzip", "-c", "-n"], stdin: Data(bytes))) }

    private func idx(_ dims: [UInt32], payload: Int) -> [UInt8] {
        var bytes: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
        // Random, not zeros: the .gz versions should be about as large as the payload, like the brief's 29 KB file.
        var rng = SampleOrder.SplitMix64(state: UInt64(payload))
        return bytes + (0..<payload).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    /// A MAT v5 file from python tuples (name, class, dims, storage type, bytes[, declared real-part length]);
    /// each matrix compressed into its own miCOMPRESSED element unless `compress` is false.
    private func mat(_ variables: String, compress: Bool = true, name: String = "svhn/test_32x32.mat") throws -> String {
        let out = path(name)
        try FileManager.default.createDirectory(atPath: (out as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = try DataFixtures.python("""
        import struct, zlib
        def el(t, data, count=None):
            if count is None and 0 < len(data) <= 4:
                return struct.pack('<HH', t, len(data)) + data + b'\\0' * (4 - len(data))
            return struct.pack('<II', t, len(data) if count is None else count) + data + b'\\0' * ((8 - len(data) % 8) % 8)
        def matrix(name, cls, dims, rtype, real, count=None):
            body = struct.pack('<II', 6, 8) + struct.pack('<II', cls, 0)
            body += el(5, struct.pack('<%di' % len(dims), *dims))
            body += el(1, name.encode())
            body += el(rtype, real, count)
            return struct.pack('<II', 14, len(body)) + body
        out = b'MATLAB 5.0 MAT-file, Platform: hostile test'.ljust(116, b' ') + b'\\0' * 8 + struct.pack('<H', 0x0100) + b'IM'
        for v in [\(variables)]:
            m = matrix(*v)
            if \(compress ? "True" : "False"):
                z = zlib.compress(m)
                m = struct.pack('<II', 15, len(z)) + z
            out += m
        open('\(out)', 'wb').write(out)
        """)
        return out
    }

    /// A tar.gz (written by hand so the size field can lie) with `mnist_m/NAME` members (name, declared size
    /// or None for the data's, data[, type]), then the end-of-archive blocks. `png()` is a valid 32×32 RGB PNG.
    private func tarGz(_ members: String, name: String = "mnist_m/mnist_m.tar.gz") throws -> String {
        let out = path(name)
        try FileManager.default.createDirectory(atPath: (out as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = try DataFixtures.python("""
        import gzip, struct, zlib
        def png():
            raw = b''.join(b'\\0' + bytes((7 * x + 3 * y + 50 * c) % 256 for x in range(32) for c in range(3)) for y in range(32))
            def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
            return b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 32, 32, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
        def member(name, size, data, kind=b'0'):
            size = len(data) if size is None else size
            h = bytearray(512)
            n = ('mnist_m/' + name).encode(); h[0:len(n)] = n
            h[100:108] = b'0000644\\0'; h[108:116] = b'0000000\\0'; h[116:124] = b'0000000\\0'
            h[124:136] = ('%011o\\0' % size).encode(); h[136:148] = b'00000000000\\0'
            h[156:157] = kind; h[257:263] = b'ustar\\0'; h[263:265] = b'00'
            h[148:156] = b' ' * 8
            h[148:156] = ('%06o\\0 ' % sum(h)).encode()
            return bytes(h) + data + bytes((512 - len(data) % 512) % 512)
        out = b''.join(member(*m) for m in [\(members)]) + bytes(1024)
        open('\(out)', 'wb').write(gzip.compress(out, mtime=0))
        """)
        return out
    }

    /// Asserts `body` throws a one-line DANNError naming `file` whose message contains one of `problems`.
    private func assertRejected<T>(_ file: String, _ problems: [String], line: UInt = #line, _ body: () throws -> T) {
        do {
            _ = try body()
            XCTFail("expected an error naming \(file)", line: line)
        } catch let error as DANNError {
            XCTAssertTrue(error.message.contains(file), "\(error.message) does not name \(file)", line: line)
            XCTAssertTrue(problems.contains { error.message.contains($0) }, "\(error.message) does not say any of \(problems)", line: line)
            XCTAssertFalse(error.message.contains("\n"), "error is more than one line", line: line)
        } catch {
            XCTFail("unexpected error type \(error)", line: line)
        }
    }

    // MARK: - Child processes and their peak memory

    private struct Measured {
        var exitCode: Int32?   // nil when killed by a signal
        var signal: Int32
        var stderr: String
        var maxRSSKiB: Int
    }

    private func runMeasured(_ arguments: [String]) throws -> Measured {
        let run = try MeasuredRun.run(try ChildProcess.executable(), arguments, environment: ChildProcess.environmentWithoutLauncher())
        return Measured(exitCode: run.signal == nil ? run.status : nil, signal: run.signal ?? 0, stderr: run.stderr,
                        maxRSSKiB: run.peakRSSBytes / 1024)
    }

    /// The peak of a child that fails at once ("not found"): process start-up, libraries, argument parsing.
    private lazy var baselineKiB: Int = {
        (try? runMeasured(["data", "load", "mnist", "test", "--data", path("nothing-here")]).maxRSSKiB) ?? 0
    }()

    /// `dann-dist data load DATASET test --data DIR` must exit 1 with one error line naming `file`, within
    /// `allowedGrowthKiB` of the baseline.
    private func assertChildRejects(_ dataset: String, dataDir: String, file: String, line: UInt = #line) throws {
        let run = try runMeasured(["data", "load", dataset, "test", "--data", dataDir])
        let lines = run.stderr.split(separator: "\n")
        XCTAssertEqual(run.exitCode, 1, "signal \(run.signal); stderr: \(run.stderr)", line: line)
        XCTAssertEqual(lines.count, 1, run.stderr, line: line)
        XCTAssertTrue(run.stderr.contains(file), run.stderr, line: line)
        let growth = run.maxRSSKiB - baselineKiB
        print("peak RSS \(run.maxRSSKiB) KiB (baseline \(baselineKiB) KiB) for \(dataset) at \(dataDir)")
        XCTAssertLessThan(growth, Self.allowedGrowthKiB, "peak RSS \(run.maxRSSKiB) KiB, baseline \(baselineKiB) KiB", line: line)
    }

    // MARK: - Cause 1: counts and sizes bounded by the file before allocating

    /// A 29 KB gzip labels file claiming 2^31 labels (main aborted on a 16 GiB index array).
    func testIDXLabelsClaiming2To31() throws {
        let labels = try write(gzip(idx([1 << 31], payload: 29_000)), "mnist/t10k-labels-idx1-ubyte.gz")
        let images = "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz"
        try FileManager.default.createSymbolicLink(atPath: path("mnist/t10k-images-idx3-ubyte.gz"), withDestinationPath: images)
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: labels)[.size] as? Int ?? 0, 20_000)
        assertRejected(labels, ["header promises 2147483648 labels (2147483648 bytes) but the file can hold at most 29000"]) {
            try MNISTDataset(split: .test, imagesPath: images, labelsPath: labels)
        }
        try assertChildRejects("mnist", dataDir: tmp.path, file: labels)
    }

    /// Both files claiming 2^31 entries, so their counts agree (what main turned into a 16 GiB allocation).
    func testIDXImagesAndLabelsClaiming2To31() throws {
        let images = try write(gzip(idx([1 << 31, 28, 28], payload: 29_000)), "mnist/t10k-images-idx3-ubyte.gz")
        _ = try write(gzip(idx([1 << 31], payload: 29_000)), "mnist/t10k-labels-idx1-ubyte.gz")
        assertRejected(images, ["header promises 2147483648 images of 28×28 (1683627180032 bytes)"]) {
            try openDataset(.mnist, .test, dataDir: tmp.path)
        }
        try assertChildRejects("mnist", dataDir: tmp.path, file: images)
    }

    /// Uncompressed: the bound is exactly the bytes after the header.
    func testRawIDXClaimBeyondFile() throws {
        let images = try write(idx([100_000, 28, 28], payload: 10 * 784), "images")
        let labels = try write(idx([100_000], payload: 10), "labels")
        assertRejected(images, ["header promises 100000 images of 28×28 (78400000 bytes) but the file can hold at most 7840"]) {
            try MNISTDataset(split: .test, imagesPath: images, labelsPath: labels)
        }
    }

    /// Within deflate's 1032:1 but not within the gzip trailer's size: the trailer pins small files exactly.
    func testGzipTrailerPinsTheSize() throws {
        let labels = try write(gzip(idx([20_000], payload: 10_000)), "labels.gz")
        assertRejected(labels, ["header promises 20000 labels (20000 bytes) but the file can hold at most 10000"]) {
            try MNISTDataset(split: .test, imagesPath: "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz", labelsPath: labels)
        }
    }

    /// Three 2^32−1 dimensions: a product no Int holds (it wrapped in -Ounchecked builds).
    func testIDXDimensionsOverflow() throws {
        let images = try write(idx([UInt32.max, UInt32.max, UInt32.max], payload: 100), "images")
        assertRejected(images, ["more bytes than any file holds"]) {
            try MNISTDataset(split: .test, imagesPath: images, labelsPath: images)
        }
    }

    /// MAT: a y real part declaring 4 GB inside a 250-byte file (main reached 4.2 GB RSS).
    func testMATRealPartFarBeyondFile() throws {
        // Dimensions agree with the 4,294,967,288 declared values, so only the size bound can catch it.
        let file = try mat("('X', 9, [32, 32, 3, 2], 2, bytes(6144)), ('y', 6, [2147483644, 2], 2, bytes([1, 2]) + bytes(6), 0xFFFFFFF8)")
        assertRejected(file, ["variable y: real part of 4294967288 bytes runs past its element"]) {
            try SVHNDataset(split: .test, path: file)
        }
        try assertChildRejects("svhn", dataDir: tmp.path, file: file)
    }

    /// X declaring 1,000,000 images (3 GB) in a 1 KB compressed element, y a genuine 1,000,000 labels (main
    /// allocated the 3 GB of pixels before finding out).
    func testMATImagesFarBeyondCompressedElement() throws {
        let file = try mat("('X', 9, [32, 32, 3, 1000000], 2, bytes(6144), 3072000000), ('y', 6, [1000000, 1], 2, bytes([1]) * 1000000)")
        assertRejected(file, ["variable X: real part of 3072000000 bytes runs past its element"]) {
            try SVHNDataset(split: .test, path: file)
        }
        try assertChildRejects("svhn", dataDir: tmp.path, file: file)
    }

    /// The miMATRIX inside a compressed element declaring 4 GB: more than its compressed bytes can expand to.
    func testMATCompressedMatrixLengthBeyondExpansion() throws {
        let file = path("big-matrix.mat")
        _ = try DataFixtures.python("""
        import struct, zlib
        m = struct.pack('<II', 14, 0xFFFFFFF0) + struct.pack('<IIII', 6, 8, 9, 0) + struct.pack('<II', 5, 16) + struct.pack('<4i', 32, 32, 3, 2) + struct.pack('<HH', 1, 1) + b'X\\0\\0\\0'
        z = zlib.compress(m)
        out = b'MATLAB 5.0 MAT-file'.ljust(116, b' ') + b'\\0' * 8 + struct.pack('<H', 0x0100) + b'IM' + struct.pack('<II', 15, len(z)) + z
        open('\(file)', 'wb').write(out)
        """)
        assertRejected(file, ["header promises a miMATRIX in the compressed element at offset 128 (4294967280 bytes) but the file can hold at most"]) {
            try SVHNDataset(split: .test, path: file)
        }
    }

    /// Uncompressed: X's real part declares more than is left of its (intact) element.
    func testMATPlainRealPartBeyondElement() throws {
        let file = try mat("('X', 9, [32, 32, 3, 20], 2, bytes(6144), 61440), ('y', 6, [20, 1], 2, bytes([1]) * 20)", compress: false,
                           name: "plain.mat")
        // The real part's tag claims 61,440 bytes but its element ends 6,144 bytes later: the element length
        // itself is consistent with the file, so only the element bound catches it.
        assertRejected(file, ["variable X: real part of 61440 bytes runs past its element (at most 6144 bytes left)"]) {
            try SVHNDataset(split: .test, path: file)
        }
    }

    /// tar: a member claiming 3 GB in a 200-byte archive (main reached 3 GB RSS).
    func testTarMemberFarBeyondArchive() throws {
        let archive = try tarGz("('mnist_m_test_labels.txt', 3000000000, b'a.png 3\\n' * 1000)")
        assertRejected(archive, ["tar member mnist_m/mnist_m_test_labels.txt claims 3000000000 bytes"]) {
            try MNISTMDataset(split: .test, source: .archive(archive))
        }
        try assertChildRejects("mnist_m", dataDir: tmp.path, file: archive)
    }

    /// tar: a member within the in-memory limit but beyond what the archive can still deliver.
    func testTarMemberBeyondRestOfArchive() throws {
        let archive = try tarGz("('mnist_m_test_labels.txt', 50000000, b'a.png 3\\n' * 1000)", name: "small.tar.gz")
        assertRejected(archive, ["truncated: tar member mnist_m/mnist_m_test_labels.txt needs 50000000 bytes, at most"]) {
            try MNISTMDataset(split: .test, source: .archive(archive))
        }
    }

    /// tar: a GNU long-name block claiming 1 GB.
    func testTarLongNameClaimingGigabyte() throws {
        let archive = try tarGz("('././@LongLink', 1000000000, b'x' * 100, b'L')", name: "longname.tar.gz")
        assertRejected(archive, ["tar long name at offset 0 claims 1000000000 bytes"]) {
            try MNISTMDataset(split: .test, source: .archive(archive))
        }
    }

    // MARK: - Cause 2: integrity checks when reading stops early

    /// The SVHN sample's layout (scipy): X compressed at offset 128, 2,655,629 bytes of zlib data after its tag.
    private func damagedSVHN(at offsetInX: (Int) -> Int, name: String) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: DataFixtures.svhnSample)))
        let xLength = Int(bytes[132]) | Int(bytes[133]) << 8 | Int(bytes[134]) << 16 | Int(bytes[135]) << 24
        XCTAssertEqual(bytes[128], 15, "X is a miCOMPRESSED element")
        bytes[136 + offsetInX(xLength)] ^= 0x01
        return try write(bytes, name)
    }

    /// One bit flipped halfway through X's zlib stream: index 0 is read long before it, and main returned
    /// the images with exit 0. Reading on to the stream's end reports the damage.
    func testFlippedByteInsideSVHNZlibStream() throws {
        let file = try damagedSVHN(at: { $0 / 2 }, name: "flipped.mat")
        let d = try SVHNDataset(split: .train, path: file)
        assertRejected(file, ["corrupt zlib data"]) { try d.load(indices: [0]) }
    }

    /// The Adler-32 itself damaged: every decompressed byte is right, only the trailer check can tell.
    func testWrongAdler32InSVHN() throws {
        let file = try damagedSVHN(at: { $0 - 1 }, name: "adler.mat")
        let d = try SVHNDataset(split: .train, path: file)
        assertRejected(file, ["corrupt zlib data: incorrect data check"]) { try d.load(indices: [5]) }
        XCTAssertEqual(try d.allLabels().count, 1083, "y's own stream is intact")
    }

    /// MNIST labels with a wrong gzip CRC-32 (and one with a wrong length) are refused.
    func testGzipWithWrongCRCAndLength() throws {
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz")))
        var badCRC = good
        badCRC[good.count - 8] ^= 0xFF
        let crc = try write(badCRC, "crc/t10k-labels-idx1-ubyte.gz")
        let images = "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz"
        assertRejected(crc, ["corrupt gzip data: incorrect data check"]) {
            try MNISTDataset(split: .test, imagesPath: images, labelsPath: crc).allLabels()
        }
        var badLength = good
        badLength[good.count - 4] ^= 0x01
        let length = try write(badLength, "length/t10k-labels-idx1-ubyte.gz")
        assertRejected(length, ["incorrect length check", "header promises 10000 labels"]) {
            try MNISTDataset(split: .test, imagesPath: images, labelsPath: length).allLabels()
        }
    }

    /// A truncated gzip: refused when opened or when read, naming the file either way.
    func testTruncatedGzip() throws {
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz")))
        let cut = try write(Array(good.prefix(good.count - 100)), "t10k-labels-idx1-ubyte.gz")
        // The last four bytes are no longer the trailer, so which check fires first depends on what they hold.
        assertRejected(cut, ["truncated", "header promises 10000 labels"]) {
            try MNISTDataset(split: .test, imagesPath: "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz", labelsPath: cut).allLabels()
        }
    }

    /// A second gzip member after the first (`cat a.gz a.gz`) used to be dropped without a word.
    func testDataAfterGzipStream() throws {
        let good = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(DataFixtures.mnistDir)/t10k-labels-idx1-ubyte.gz")))
        let doubled = try write(good + good, "doubled.gz")
        assertRejected(doubled, ["data follows the end of the gzip stream"]) {
            try MNISTDataset(split: .test, imagesPath: "\(DataFixtures.mnistDir)/t10k-images-idx3-ubyte.gz", labelsPath: doubled).allLabels()
        }
    }

    private let pngArchive = "('mnist_m_test/a.png', None, png()), ('mnist_m_test/b.png', None, png()), ('mnist_m_test_labels.txt', None, b'a.png 3\\nb.png 8\\n')"

    /// An MNIST-M archive whose gzip CRC is wrong: the listing stops at the end-of-archive blocks, which main
    /// took as the end, so it trained on whatever the archive held.
    func testMNISTMArchiveWithWrongCRC() throws {
        let archive = try tarGz(pngArchive, name: "crc.tar.gz")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: archive)))
        bytes[bytes.count - 8] ^= 0xFF
        try DataFixtures.write(bytes, to: archive)
        assertRejected(archive, ["corrupt gzip data: incorrect data check"]) {
            try MNISTMDataset(split: .test, source: .archive(archive))
        }
    }

    /// Damaged after it was opened: a load that needs only the first member still reads on to the CRC.
    func testMNISTMLoadReadsOnToTheCRC() throws {
        let archive = try tarGz(pngArchive, name: "later.tar.gz")
        let d = try MNISTMDataset(split: .test, source: .archive(archive))
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: archive)))
        bytes[bytes.count - 8] ^= 0xFF
        try DataFixtures.write(bytes, to: archive)
        assertRejected(archive, ["corrupt gzip data: incorrect data check"]) { try d.load(indices: [0]) }
    }

    // MARK: - Cause 3: negative, zero and inconsistent dimensions

    /// N = −5 (main trapped in `data load` and segfaulted `eval`).
    func testMATNegativeImageCount() throws {
        let file = try mat("('X', 9, [32, 32, 3, -5], 2, bytes(6144), 6144), ('y', 6, [-5, 1], 2, bytes([1, 2]))")
        assertRejected(file, ["variable X has dimension -5 (32×32×3×-5); dimensions cannot be negative"]) {
            try SVHNDataset(split: .test, path: file)
        }
        try assertChildRejects("svhn", dataDir: tmp.path, file: file)
    }

    /// N = 0 (main "loaded" 0 images with exit 0).
    func testMATZeroImageCount() throws {
        let file = try mat("('X', 9, [32, 32, 3, 0], 2, b''), ('y', 6, [0, 1], 2, b'')")
        assertRejected(file, ["variable X is 32×32×3×0: it holds no images"]) { try SVHNDataset(split: .test, path: file) }
    }

    /// Dimensions that disagree with the data the element holds.
    func testMATDimensionsDisagreeWithData() throws {
        let file = try mat("('X', 9, [32, 32, 3, 1000], 2, bytes(6144)), ('y', 6, [1000, 1], 2, bytes([1]) * 1000)")
        assertRejected(file, ["variable X: real part holds 6144 values but its dimensions 32×32×3×1000 need 3072000"]) {
            try SVHNDataset(split: .test, path: file)
        }
    }

    /// Dimensions whose product overflows.
    func testMATDimensionsOverflow() throws {
        let file = try mat("('X', 9, [2147483647] * 4, 2, bytes(8)), ('y', 6, [1, 1], 2, bytes([1]))")
        assertRejected(file, ["need more than any file holds"]) { try SVHNDataset(split: .test, path: file) }
    }

    /// IDX with a zero count: an empty split makes no sense.
    func testIDXZeroCount() throws {
        let images = try write(idx([0, 28, 28], payload: 0), "images")
        let labels = try write(idx([0], payload: 0), "labels")
        assertRejected(images, ["IDX header promises 0×28×28 entries"]) {
            try MNISTDataset(split: .test, imagesPath: images, labelsPath: labels)
        }
    }

    /// An MNIST-M labels file listing nothing.
    func testMNISTMEmptyLabels() throws {
        let archive = try tarGz("('mnist_m_test_labels.txt', None, b'')", name: "empty.tar.gz")
        assertRejected(archive, ["mnist_m_test_labels.txt: lists no images"]) { try MNISTMDataset(split: .test, source: .archive(archive)) }
    }

    // MARK: - PNG (ImageReader)

    /// A 100-byte PNG claiming 16000×16000 (768 MB of RGB) is refused before the buffer is allocated.
    func testPNGHeaderClaimingHugeImage() throws {
        let file = path("huge.png")
        _ = try DataFixtures.python("""
        import struct, zlib
        def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
        data = b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 16000, 16000, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(b'\\0' * 100)) + chunk(b'IEND', b'')
        open('\(file)', 'wb').write(data)
        """)
        assertRejected(file, ["PNG header promises 16000x16000 pixels"]) { try ImageReader.read(path: file) }
        let checkpoint = "\(DataFixtures.repository)/pretrained/small-mnist-mnist_m"
        guard FileManager.default.fileExists(atPath: checkpoint) else { return }
        let run = try runMeasured(["predict", "--checkpoint", checkpoint, file])
        XCTAssertEqual(run.exitCode, 1, run.stderr)
        XCTAssertTrue(run.stderr.contains(file), run.stderr)
        print("peak RSS \(run.maxRSSKiB) KiB (baseline \(baselineKiB) KiB) for predict \(file)")
        XCTAssertLessThan(run.maxRSSKiB - baselineKiB, Self.allowedGrowthKiB)
    }
}
