import Foundation

/// What `dann-dist analyze` measures: E's features for source and target test images, their joint 2-D PCA
/// projection and the proxy A-distance between the two domains.
public struct FeatureSpaceAnalysis {
    public let source: DomainFeatures
    public let target: DomainFeatures
    /// Fitted to source and target rows together, so both domains share the axes.
    public let pca: PCA
    /// Source rows then target rows, two coordinates each.
    public let projection: [Double]
    public let proxyADistance: ProxyADistance

    public init(source: DomainFeatures, target: DomainFeatures, options: ProxyADistance.Options = .init()) throws {
        for domain in [source, target] where domain.count < 2 {
            throw DANNError("\(domain.dataset.rawValue) test set: \(domain.count) image(s) taken; the analysis needs at least 2 per domain")
        }
        guard source.featureSize == target.featureSize else {
            throw DANNError("source and target features differ in width (\(source.featureSize) vs \(target.featureSize))")
        }
        self.source = source
        self.target = target
        let f = source.featureSize
        let rows = source.features + target.features
        (pca, projection) = rows.withUnsafeBufferPointer { rows in
            let pca = PCA(rows: rows.baseAddress!, count: source.count + target.count, features: f, components: 2)
            return (pca, pca.project(rows.baseAddress!, count: source.count + target.count))
        }
        proxyADistance = source.features.withUnsafeBufferPointer { s in
            target.features.withUnsafeBufferPointer { t in
                ProxyADistance(source: s.baseAddress!, sourceCount: source.count, target: t.baseAddress!,
                               targetCount: target.count, features: f, options: options)
            }
        }
    }

    /// Explained variance ratio of the two axes.
    public var explainedVariance: [Double] { pca.explainedVarianceRatio }

    /// Both panels of the feature-space figure, titled with `name` (e.g. the checkpoint) and the distance.
    public func figure(name: String) -> RGBImage {
        let k = pca.componentCount
        func points(_ range: Range<Int>) -> [(Double, Double)] {
            range.map { (projection[$0 * k], k > 1 ? projection[$0 * k + 1] : 0) }
        }
        let ratios = explainedVariance + [0, 0]
        let title = "features of E: \(name)  -  proxy A-distance \(String(format: "%.3f", proxyADistance.distance))"
        return FeatureSpaceFigure.render(
            title: title,
            source: .init(name: source.dataset.rawValue, points: points(0..<source.count), labels: source.labels),
            target: .init(name: target.dataset.rawValue, points: points(source.count..<(source.count + target.count)), labels: target.labels),
            xLabel: String(format: "PC1 (%.1f%% of variance)", ratios[0] * 100),
            yLabel: String(format: "PC2 (%.1f%% of variance)", ratios[1] * 100))
    }

    /// The text report, one line each: distance, explained variance.
    public var summary: [String] {
        let d = proxyADistance
        return [
            "proxy A-distance \(String(format: "%.3f", d.distance)) (held-out domain error \(String(format: "%.4f", d.heldOutError)), "
                + "\(source.count) + \(target.count) images, \(source.featureSize) features)",
            "PCA explained variance: " + explainedVariance.map { String(format: "%.2f", $0) }.joined(separator: ", "),
        ]
    }

    /// One JSON object for `analyze --json`: proxy_a_distance, domain_error, domain_train_error, source,
    /// target, counts, features, explained_variance and (when written) png.
    public func json(png: String?) -> String {
        struct Counts: Encodable { let source: Int, target: Int }
        struct Report: Encodable {
            let proxy_a_distance: Double, domain_error: Double, domain_train_error: Double
            let source: String, target: String, counts: Counts, features: Int
            let explained_variance: [Double]
            let png: String?
        }
        let d = proxyADistance
        return JSONText.encode(Report(
            proxy_a_distance: d.distance, domain_error: d.heldOutError, domain_train_error: d.trainError,
            source: source.dataset.rawValue, target: target.dataset.rawValue,
            counts: Counts(source: source.count, target: target.count), features: source.featureSize,
            explained_variance: explainedVariance, png: png))
    }
}
