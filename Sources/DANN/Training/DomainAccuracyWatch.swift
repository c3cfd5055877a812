/// Notices when the domain classifier's training accuracy stays pinned at 0 or 1: at 1, D wins outright and
/// its reversed gradient has stopped shaping the features; at 0, E has learned to fool D so completely that
/// D's loss grows without bound, the state that precedes the collapse of an unnormalised DANN.
public struct DomainAccuracyWatch: Sendable {
    /// Accuracy within this distance of 0 or 1 counts as pinned.
    public var margin: Double
    /// Consecutive pinned steps before a warning.
    public var patience: Int
    private var run = 0
    private var side = 0.0
    private var warned = false

    public init(margin: Double = 0.02, patience: Int = 200) {
        self.margin = margin
        self.patience = patience
    }

    /// Takes one step's domain accuracy; returns a warning once per pinned stretch, when it reaches `patience`.
    public mutating func observe(domainAccuracy a: Double, step: Int) -> String? {
        let pinned: Double? = a >= 1 - margin ? 1 : a <= margin ? 0 : nil
        guard let pinned else {
            run = 0
            warned = false
            return nil
        }
        if run > 0 && pinned != side { run = 0; warned = false }
        side = pinned
        run += 1
        guard run >= patience, !warned else { return nil }
        warned = true
        let what = pinned == 1 ? "the domain classifier separates the domains perfectly (its reversed gradient has little left to say)"
                               : "the domain classifier is wrong on nearly every image (the adversarial game has run away)"
        return "step \(step): domain accuracy has been \(Int(pinned)) ± \(margin) for \(run) steps: \(what); "
            + "consider --domain-weight, --lambda-max, --clip-grad-norm or a batch-normalised --arch"
    }
}
