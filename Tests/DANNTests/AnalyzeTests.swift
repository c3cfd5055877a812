import Foundation
import XCTest
@testable import DANN

/// `dann-dist analyze`: PCA against a naive Double covariance with power iteration, the proxy A-distance
/// against the Bayes error of Gaussian clouds, the figure decoded back from PNG, and the CLI end to end.
final class AnalyzeTests: XCTestCase {
    // MARK: Synthetic data (its own generator, independent of the library's CounterRNG)

    /// Standard normals from a 64-bit LCG through Box–Muller.
    struct Gaussian {
        var state: UInt64
        mutating func next() -> Double {
            func uniform() -> Double {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return (Double(state >> 11) + 0.5) / Double(1 << 53)
            }
            return (-2 * log(uniform())).squareRoot() * cos(2 * .pi * uniform())
        }
    }

    /// n rows of f features: `scales.count` latent Gaussian directions (orthonormal, random) with the given
    /// standard deviations, small isotropic noise, and a non-zero mean so centring matters.
    static func lowRankData(n: Int, f: Int, scales: [Double], noise: Double, seed: UInt64) -> [Float] {
        var g = Gaussian(state: seed)
        let r = scales.count
        var basis = (0..<r).map { _ in (0..<f).map { _ in g.next() } }
        for i in 0..<r {
            for j in 0..<i {
                let dot = zip(basis[i], basis[j]).reduce(0) { $0 + $1.0 * $1.1 }
                basis[i] = zip(basis[i], basis[j]).map { $0 - dot * $1 }
            }
            let norm = basis[i].reduce(0) { $0 + $1 * $1 }.squareRoot()
            basis[i] = basis[i].map { $0 / norm }
        }
        var x = [Float](repeating: 0, count: n * f)
        for row in 0..<n {
            let z = scales.map { $0 * g.next() }
            for c in 0..<f {
                var value = 3 + 0.1 * Double(c) + noise * g.next()
                for k in 0..<r { value += z[k] * basis[k][c] }
                x[row * f + c] = Float(value)
            }
        }
        return x
    }

    /// The reference: the full F×F sample covariance in Double, its top eigenvectors by power iteration
    /// with deflation, and its trace.
    static func referencePCA(_ x: [Float], n: Int, f: Int, components: Int) -> (vectors: [[Double]], values: [Double], total: Double) {
        var mean = [Double](repeating: 0, count: f)
        for i in 0..<n { for c in 0..<f { mean[c] += Double(x[i * f + c]) / Double(n) } }
        var cov = [[Double]](repeating: [Double](repeating: 0, count: f), count: f)
        for i in 0..<n {
            let d = (0..<f).map { Double(x[i * f + $0]) - mean[$0] }
            for a in 0..<f { for b in 0..<f { cov[a][b] += d[a] * d[b] / Double(n - 1) } }
        }
        let total = (0..<f).reduce(0) { $0 + cov[$1][$1] }
        var vectors: [[Double]] = [], values: [Double] = []
        for _ in 0..<components {
            var v = (0..<f).map { sin(Double($0) + 1) }
            var value = 0.0
            for _ in 0..<20_000 {
                var w = (0..<f).map { a in (0..<f).reduce(0) { $0 + cov[a][$1] * v[$1] } }
                for (u, l) in zip(vectors, values) {
                    let dot = zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
                    w = zip(w, u).map { $0 - l * dot * $1 }
                }
                let norm = w.reduce(0) { $0 + $1 * $1 }.squareRoot()
                w = w.map { $0 / norm }
                let change = zip(w, v).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                v = w
                value = norm
                if change < 1e-26 { break }
            }
            vectors.append(v)
            values.append(value)
        }
        return (vectors, values, total)
    }

    func assertPCAMatchesReference(n: Int, f: Int, scales: [Double], file: StaticString = #filePath, line: UInt = #line) {
        let x = Self.lowRankData(n: n, f: f, scales: scales, noise: 0.05, seed: UInt64(n * 1000 + f))
        let pca = x.withUnsafeBufferPointer { PCA(rows: $0.baseAddress!, count: n, features: f, components: 2) }
        let reference = Self.referencePCA(x, n: n, f: f, components: 2)
        XCTAssertEqual(pca.componentCount, 2, file: file, line: line)
        XCTAssertLessThan(pca.iterations, 300, "converged before the iteration bound", file: file, line: line)
        XCTAssertEqual(pca.totalVariance, reference.total, accuracy: 1e-5 * reference.total, file: file, line: line)
        for j in 0..<2 {
            let cosine = zip(pca.component(j), reference.vectors[j]).reduce(0) { $0 + $1.0 * $1.1 }
            XCTAssertGreaterThanOrEqual(abs(cosine), 0.999, "component \(j)", file: file, line: line)
            XCTAssertEqual(pca.explainedVarianceRatio[j], reference.values[j] / reference.total, accuracy: 1e-4,
                           "component \(j)", file: file, line: line)
            let length = pca.component(j).reduce(0) { $0 + $1 * $1 }
            XCTAssertEqual(length, 1, accuracy: 1e-9, file: file, line: line)
        }
        // Scores are (x − mean)·component, computed here row by row.
        let scores = x.withUnsafeBufferPointer { pca.project($0.baseAddress!, count: n) }
        for i in [0, n / 2, n - 1] {
            for j in 0..<2 {
                var expected = 0.0
                for c in 0..<f { expected += (Double(x[i * f + c]) - pca.mean[c]) * pca.components[j * f + c] }
                XCTAssertEqual(scores[i * 2 + j], expected, accuracy: 1e-9 * max(1, abs(expected)), file: file, line: line)
            }
        }
    }

    /// `leading` standard deviations, then a tail decaying by `decay` per direction up to `count` in all, so the
    /// spectrum is full rank and the block iteration cannot just capture the whole signal in one step.
    static func spectrum(_ leading: [Double], tail: Double, decay: Double, count: Int) -> [Double] {
        leading + (0..<(count - leading.count)).map { tail * pow(decay, Double($0)) }
    }

    func testPCAMatchesNaiveCovariance() {
        assertPCAMatchesReference(n: 400, f: 30, scales: Self.spectrum([5, 3, 2], tail: 1.5, decay: 0.9, count: 30))
    }

    /// Second and third variances about 6% apart, and a slowly decaying tail behind them: the oversampled
    /// block still separates them.
    func testPCAWithCloseSecondAndThirdComponents() {
        assertPCAMatchesReference(n: 600, f: 40, scales: Self.spectrum([6], tail: 3, decay: 0.97, count: 40))
    }

    /// More features than rows, as the seed extractor's 6272 features for a few thousand images.
    func testPCAWideMatrix() {
        assertPCAMatchesReference(n: 80, f: 500, scales: Self.spectrum([4, 2.5], tail: 1.5, decay: 0.95, count: 60))
    }

    func testPCAOfConstantDataIsZero() {
        let x = [Float](repeating: 2.5, count: 50 * 7)
        let pca = x.withUnsafeBufferPointer { PCA(rows: $0.baseAddress!, count: 50, features: 7) }
        XCTAssertEqual(pca.totalVariance, 0)
        XCTAssertEqual(pca.explainedVarianceRatio, [0, 0])
        XCTAssertEqual(pca.mean, [Double](repeating: 2.5, count: 7))
    }

    // MARK: Proxy A-distance

    /// Two Gaussian clouds (unit covariance) whose means are `shift` apart along a random direction.
    static func clouds(n: Int, f: Int, shift: Double, seed: UInt64) -> (source: [Float], target: [Float]) {
        var g = Gaussian(state: seed)
        var direction = (0..<f).map { _ in g.next() }
        let norm = direction.reduce(0) { $0 + $1 * $1 }.squareRoot()
        direction = direction.map { $0 / norm }
        let source = (0..<(n * f)).map { _ in Float(g.next()) }
        let target = (0..<(n * f)).map { i in Float(g.next() + shift * direction[i % f]) }
        return (source, target)
    }

    static func pad(_ clouds: (source: [Float], target: [Float]), n: Int, f: Int) -> ProxyADistance {
        clouds.source.withUnsafeBufferPointer { s in
            clouds.target.withUnsafeBufferPointer { t in
                ProxyADistance(source: s.baseAddress!, sourceCount: n, target: t.baseAddress!, targetCount: n, features: f)
            }
        }
    }

    /// Standard normal CDF, for the Bayes error Φ(−shift/2) of two unit Gaussians `shift` apart.
    static func phi(_ x: Double) -> Double { 0.5 * erfc(-x / 2.squareRoot()) }

    func testProxyADistanceOfSeparatedCloudsIsNearTwo() {
        let d = Self.pad(Self.clouds(n: 1000, f: 20, shift: 8, seed: 7), n: 1000, f: 20)
        XCTAssertGreaterThan(d.distance, 1.9)
        XCTAssertLessThanOrEqual(d.distance, 2)
        XCTAssertEqual(d.heldOutError, Self.phi(-4), accuracy: 0.01)
        XCTAssertEqual(d.trainCount, 1000)
        XCTAssertEqual(d.heldOutCount, 1000)
    }

    func testProxyADistanceOfIdenticalDistributionsIsNearZero() {
        let d = Self.pad(Self.clouds(n: 1000, f: 50, shift: 0, seed: 11), n: 1000, f: 50)
        XCTAssertLessThan(d.distance, 0.3)
        XCTAssertGreaterThanOrEqual(d.distance, 0)
        XCTAssertEqual(d.heldOutError, 0.5, accuracy: 0.075)
    }

    /// Overlapping clouds: the held-out error is the Bayes error Φ(−1) ≈ 0.159 of the optimal linear rule
    /// plus sampling noise, so the distance is 2(1 − 2·0.159) ≈ 1.37.
    func testProxyADistanceMatchesBayesErrorOfOverlappingClouds() {
        let d = Self.pad(Self.clouds(n: 2000, f: 10, shift: 2, seed: 3), n: 2000, f: 10)
        let bayes = Self.phi(-1)
        XCTAssertEqual(d.heldOutError, bayes, accuracy: 0.025)
        XCTAssertEqual(d.distance, 2 * (1 - 2 * d.heldOutError), accuracy: 1e-12)
        XCTAssertEqual(d.distance, 2 * (1 - 2 * bayes), accuracy: 0.1)
    }

    // MARK: Figure

    func testFigureDecodesWithBothDomainsWhereTheyWereDrawn() throws {
        // Source on the left, target on the right: each colour must show up only on its own side.
        var g = Gaussian(state: 5)
        let source = (0..<300).map { _ in (-3 + 0.5 * g.next(), 0.5 * g.next()) }
        let target = (0..<300).map { _ in (3 + 0.5 * g.next(), 0.5 * g.next()) }
        let labels = (0..<300).map { UInt8($0 % 10) }
        let image = FeatureSpaceFigure.render(title: "test figure - proxy A-distance 1.000",
                                              source: .init(name: "mnist", points: source, labels: labels),
                                              target: .init(name: "mnist_m", points: target, labels: labels),
                                              xLabel: "PC1", yLabel: "PC2")
        let dir = TestPaths.temporaryDirectory("analyze-figure")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("features.png").path
        try PNGWriter.write(image, to: path)
        let decoded = try ImageReader.read(path: path)
        XCTAssertEqual(decoded.width, 1800)
        XCTAssertEqual(decoded.height, 910)
        XCTAssertEqual(decoded, image)

        // A lone dot on white: 0.75 of the colour over 0.25 of white; overlaps are darker still.
        func onWhite(_ c: RGBColor) -> RGBColor {
            func mix(_ v: UInt8) -> UInt8 { UInt8((255 * 0.25 + Double(v) * 0.75).rounded()) }
            return RGBColor(mix(c.r), mix(c.g), mix(c.b))
        }
        let blue = RGBColor(hex: 0x1F77B4), red = RGBColor(hex: 0xD62728)
        func columns(of color: RGBColor, panel: Int) -> [Int] {
            var found: [Int] = []
            for y in 60..<decoded.height { for x in (panel * 900)..<(panel * 900 + 900) where decoded.pixel(x: x, y: y) == color { found.append(x) } }
            return found
        }
        let blueColumns = columns(of: onWhite(blue), panel: 0), redColumns = columns(of: onWhite(red), panel: 0)
        XCTAssertGreaterThan(blueColumns.count, 100)
        XCTAssertGreaterThan(redColumns.count, 100)
        XCTAssertLessThan(blueColumns.max()!, 450, "source dots belong on the left of the domain panel")
        XCTAssertGreaterThan(redColumns.min()!, 450, "target dots belong on the right of the domain panel")
        // The legend shows each domain's colour at full strength.
        XCTAssertFalse(columns(of: blue, panel: 0).isEmpty)
        XCTAssertFalse(columns(of: red, panel: 0).isEmpty)
        // The class panel uses the ten tab10 colours.
        for color in LinePlot.palette { XCTAssertFalse(columns(of: onWhite(color), panel: 1).isEmpty, "\(color)") }
    }

    func testEvenlySpacedIndices() {
        XCTAssertEqual(DomainFeatures.evenlySpaced(4, of: 10), [0, 2, 5, 7])
        XCTAssertEqual(DomainFeatures.evenlySpaced(20, of: 3), [0, 1, 2])
        XCTAssertEqual(DomainFeatures.evenlySpaced(3, of: 9001), [0, 3000, 6000])
    }

    /// A run's checkpoint names its domains in trainer.safetensors; a bare model file names none.
    func testRecordedDomainsComeFromTheTrainerState() throws {
        let dir = TestPaths.temporaryDirectory("analyze-recorded")
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = dir.appendingPathComponent(ModelFile.fileName).path
        XCTAssertNil(try RecordedDomains.beside(modelFile: model))
        var config = TrainingConfig()
        (config.source, config.target) = (.mnistM, .svhn)
        try SafeTensors.write([], metadata: ["config": try config.json()], to: dir.appendingPathComponent(TrainerState.fileName).path)
        let recorded = try XCTUnwrap(try RecordedDomains.beside(modelFile: model))
        XCTAssertEqual(recorded.source, .mnistM)
        XCTAssertEqual(recorded.target, .svhn)
    }

    // MARK: CLI

    static let checkpoint = TestPaths.packageRoot.appendingPathComponent("data/pretrained/small-mnist-mnist_m").path

    func testCLIOnShippedCheckpoint() throws {
        let data = try DataFixtures.mnistAndMNISTMDataDir()
        defer { try? FileManager.default.removeItem(at: data) }
        let png = data.appendingPathComponent("features.png").path
        let text = try ChildProcess.runCLI(["analyze", "--checkpoint", Self.checkpoint, "--data", data.path,
                                            "--count", "300", "--out", png, "--threads", "1"])
        XCTAssertEqual(text.status, 0, text.stderr)
        let lines = text.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, text.stdout)
        let first = try XCTUnwrap(lines.first)
        XCTAssertTrue(first.hasPrefix("proxy A-distance "), first)
        XCTAssertTrue(first.hasSuffix(", 300 + 300 images, 768 features)"), first)
        let distance = try XCTUnwrap(Double(first.dropFirst("proxy A-distance ".count).prefix { $0 != " " }))
        XCTAssertTrue((0...2).contains(distance), first)
        XCTAssertTrue(lines[1].hasPrefix("PCA explained variance: "), lines[1])
        XCTAssertEqual(lines[2], "wrote \(png)")
        let image = try ImageReader.read(path: png)
        XCTAssertEqual(image.width, FeatureSpaceFigure.size.width)
        XCTAssertEqual(image.height, FeatureSpaceFigure.size.height)

        let json = try ChildProcess.runCLI(["analyze", "--checkpoint", Self.checkpoint, "--data", data.path,
                                            "--count", "300", "--out", png, "--json", "--threads", "1"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try EvalFixtures.parseJSON(json.stdout)
        XCTAssertEqual(object["counts"] as? [String: Int], ["source": 300, "target": 300])
        XCTAssertEqual(object["features"] as? Int, 768)
        XCTAssertEqual(object["source"] as? String, "mnist")
        XCTAssertEqual(object["target"] as? String, "mnist_m")
        // The same inputs give the same numbers: the text line shows the JSON value to 3 decimals.
        let jsonDistance = try XCTUnwrap(object["proxy_a_distance"] as? Double)
        XCTAssertEqual(String(format: "%.3f", jsonDistance), String(format: "%.3f", distance))
        let error = try XCTUnwrap(object["domain_error"] as? Double)
        XCTAssertEqual(jsonDistance, 2 * (1 - 2 * min(error, 0.5)), accuracy: 1e-12)
        let variance = try XCTUnwrap(object["explained_variance"] as? [Double])
        XCTAssertEqual(variance.count, 2)
        XCTAssertTrue(variance[0] >= variance[1] && variance[1] > 0 && variance[0] + variance[1] <= 1, "\(variance)")
    }

    func testCLIMissingCheckpointIsOneLine() throws {
        let missing = TestPaths.temporaryDirectory("analyze-missing").appendingPathComponent("no-such-run").path
        let result = try ChildProcess.runCLI(["analyze", "--checkpoint", missing])
        EvalFixtures.assertOneLineError(result, naming: missing, "no such file or folder")
    }

    func testCLIMissingTestSetIsOneLine() throws {
        let empty = TestPaths.temporaryDirectory("analyze-empty")
        defer { try? FileManager.default.removeItem(at: empty) }
        let result = try ChildProcess.runCLI(["analyze", "--checkpoint", Self.checkpoint, "--data", empty.path,
                                              "--out", empty.appendingPathComponent("f.png").path])
        EvalFixtures.assertOneLineError(result, naming: "\(empty.path)/mnist/", "not found")
    }
}
