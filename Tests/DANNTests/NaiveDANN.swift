import Foundation
@testable import DANN

/// The DANN loss computed from scratch in Double with the naive operations, reading the weights by their
/// PyTorch names. Dropout uses the library's public mask function (the mask is data here, not the thing checked).
struct NaiveDANN {
    let architecture: Architecture
    var params: [String: [Double]]
    var dropout: Float
    var seed: UInt64
    var step: Int

    init(model: DANNModel, dropout: Float, seed: UInt64, step: Int) {
        architecture = model.architecture
        params = [:]
        for e in model.arena.entries { params[e.name] = model.arena.parameter(e).map(Double.init) }
        self.dropout = dropout
        self.seed = seed
        self.step = step
    }

    /// Features [n][F] of image-major images; `rowKeys` key each sample's dropout mask; batch norm treats
    /// rows below `sourceRows` and the rest as separate batches.
    func features(_ images: [Double], n: Int, rowKeys: [UInt64], sourceRows: Int) -> [Double] {
        var x = images
        var (c, h, w) = (architecture.inputChannels, architecture.inputSize, architecture.inputSize)
        for (i, spec) in architecture.extractor.enumerated() {
            switch spec {
            case let .conv(out, k, pad):
                let r = Naive.conv(x, n: n, c: c, h: h, w: w, weight: params["E.\(i).weight"]!, bias: params["E.\(i).bias"]!,
                                   out: out, k: k, pad: pad)
                (x, c, h, w) = (r.y, out, r.oh, r.ow)
            case .relu: x = Naive.relu(x)
            case let .maxPool(k, s, pad):
                let r = Naive.maxPool(x, planes: n * c, h: h, w: w, k: k, s: s, pad: pad)
                (x, h, w) = (r.y, r.oh, r.ow)
            case .dropout:
                let f = c * h * w
                for j in x.indices {
                    x[j] = Dropout.keeps(seed: seed, step: step, rowKey: rowKeys[j / f], element: j % f, rate: dropout)
                        ? x[j] / Double(1 - dropout) : 0
                }
            case .dropout2d:
                let plane = h * w
                for j in x.indices {
                    x[j] = Dropout2d.keeps(seed: seed, step: step, rowKey: rowKeys[j / (c * plane)], channel: (j / plane) % c, rate: dropout)
                        ? x[j] / Double(1 - dropout) : 0
                }
            case .batchNorm:
                x = Naive.batchNorm(x, n: n, c: c, plane: h * w, gamma: params["E.\(i).weight"]!, beta: params["E.\(i).bias"]!,
                                    sourceRows: sourceRows).y
            case .linear: fatalError("not in the extractor")
            }
        }
        return x
    }

    func head(_ prefix: String, _ specs: [LayerSpec], _ input: [Double], n: Int, sourceRows: Int) -> [Double] {
        var x = input
        var size = input.count / max(n, 1)
        for (i, spec) in specs.enumerated() {
            switch spec {
            case let .linear(out):
                x = Naive.linear(x, n: n, inSize: size, weight: params["\(prefix).\(i).weight"]!, bias: params["\(prefix).\(i).bias"]!, out: out)
                size = out
            case .relu: x = Naive.relu(x)
            case .batchNorm:
                x = Naive.batchNorm(x, n: n, c: size, plane: 1, gamma: params["\(prefix).\(i).weight"]!,
                                    beta: params["\(prefix).\(i).bias"]!, sourceRows: sourceRows).y
            default: fatalError("unsupported in heads")
            }
        }
        return x
    }

    /// (label loss, domain loss) of a slice: source rows first, each mean over the global batch B.
    func losses(images: [Double], labels: [Int], sourceCount ns: Int, targetCount nt: Int, globalBatch: Int) -> (Double, Double) {
        losses(features: sliceFeatures(images, sourceCount: ns, targetCount: nt, globalBatch: globalBatch),
               labels: labels, sourceCount: ns, targetCount: nt, globalBatch: globalBatch)
    }

    /// E of a slice, keyed as the model keys it (source j → j, target j → B + j).
    func sliceFeatures(_ images: [Double], sourceCount ns: Int, targetCount nt: Int, globalBatch: Int) -> [Double] {
        let keys = (0..<(ns + nt)).map { UInt64($0 < ns ? $0 : globalBatch + $0 - ns) }
        return features(images, n: ns + nt, rowKeys: keys, sourceRows: ns)
    }

    /// The heads' losses given E's output, so that checks of C and D need not recompute E.
    func losses(features f: [Double], labels: [Int], sourceCount ns: Int, targetCount nt: Int, globalBatch: Int) -> (Double, Double) {
        let n = ns + nt
        let fs = Array(f[0..<(f.count / n) * ns])
        let label = ns > 0 ? Naive.nll(head("G_c", architecture.classifier, fs, n: ns, sourceRows: ns), rows: ns, classes: 10, targets: labels) : 0
        let domainTargets = (0..<n).map { $0 < ns ? 0 : 1 }
        let domain = Naive.nll(head("G_d", architecture.discriminator, f, n: n, sourceRows: ns), rows: n, classes: 2, targets: domainTargets)
        return (label / Double(globalBatch), domain / Double(globalBatch))
    }
}
