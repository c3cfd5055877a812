/// How a preset's parameters start. Deterministic in `seed`: tensor t, element i draws from CounterRNG(seed, t, i).
public enum Initialization: String, Equatable, Sendable {
    /// The seed repository's: conv weights Kaiming-normal (fan_out, ReLU gain √2), linear weights N(0, 0.01²), biases 0.
    case seed
    /// PyTorch's layer defaults (what the DANN paper's small network gets in a PyTorch twin): weights and
    /// biases U(−1/√fan_in, 1/√fan_in). The seed's N(0, 0.01²) starts this narrow network (fan-ins 768, 100, 100)
    /// with logits of order 1e-3, a saddle plain SGD takes thousands of steps to leave.
    case pytorchDefault = "pytorch-default"

    public func apply(to arena: ParameterArena, seed: UInt64) {
        for (t, entry) in arena.entries.enumerated() {
            let values = arena.parameter(entry)
            let key = CounterRNG.key(seed: seed, 0x1417, UInt64(t))
            switch self {
            case .seed:
                let std: Double
                switch entry.shape.count {
                case 4: std = (2.0 / Double(entry.shape[0] * entry.shape[2] * entry.shape[3])).squareRoot()
                case 2: std = 0.01
                default:
                    values.update(repeating: 0)
                    continue
                }
                for i in 0..<values.count { values[i] = Float(std * CounterRNG.normal(key: key, element: UInt64(i))) }
            case .pytorchDefault:
                // A bias takes its layer's fan-in: the weight entry just before it.
                let weight = entry.shape.count == 1 ? arena.entries[t - 1] : entry
                let fanIn = weight.shape.dropFirst().reduce(1, *)
                let bound = 1 / Double(fanIn).squareRoot()
                for i in 0..<values.count {
                    let u = Double(CounterRNG.uniform(key: key, element: UInt64(i)))
                    values[i] = Float((2 * u - 1) * bound)
                }
            }
        }
    }
}
