/// The seed's initialisation: conv weights Kaiming-normal (fan_out, ReLU gain √2), linear weights
/// N(0, 0.01²), biases 0. Deterministic in `seed`: tensor t, element i draws from CounterRNG(seed, t, i).
public enum Initialization {
    public static func apply(to arena: ParameterArena, seed: UInt64) {
        for (t, entry) in arena.entries.enumerated() {
            let values = arena.parameter(entry)
            let std: Double
            switch entry.shape.count {
            case 4: std = (2.0 / Double(entry.shape[0] * entry.shape[2] * entry.shape[3])).squareRoot()
            case 2: std = 0.01
            default:
                values.update(repeating: 0)
                continue
            }
            let key = CounterRNG.key(seed: seed, 0x1417, UInt64(t))
            for i in 0..<values.count {
                values[i] = Float(std * CounterRNG.normal(key: key, element: UInt64(i)))
            }
        }
    }
}
