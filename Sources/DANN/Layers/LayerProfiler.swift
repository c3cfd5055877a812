#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time spent in each layer's forward and backward, for `bench`. `Sequential` consults
/// `LayerProfiler.active` once per pass: with no profiler installed (training) the cost is one load and
/// one branch per pass, and no clock is read.
public final class LayerProfiler {
    /// The profiler `Sequential` reports to; nil (the default) turns profiling off.
    /// Set it only between steps, from the thread that runs them.
    nonisolated(unsafe) public static var active: LayerProfiler?

    /// The layers being timed, in the order given at init.
    public let layers: [Layer]
    /// Seconds accumulated per layer (same order as `layers`) since the last `reset()`.
    public private(set) var forwardSeconds: [Double]
    public private(set) var backwardSeconds: [Double]
    private let slots: [ObjectIdentifier: Int]

    public init(layers: [Layer]) {
        self.layers = layers
        forwardSeconds = Array(repeating: 0, count: layers.count)
        backwardSeconds = Array(repeating: 0, count: layers.count)
        var slots: [ObjectIdentifier: Int] = [:]
        for (i, layer) in layers.enumerated() { slots[ObjectIdentifier(layer)] = i }
        self.slots = slots
    }

    public func reset() {
        for i in forwardSeconds.indices { forwardSeconds[i] = 0; backwardSeconds[i] = 0 }
    }

    /// Seconds spent in the given layers (forward, backward).
    public func seconds(in subset: [Layer]) -> (forward: Double, backward: Double) {
        var f = 0.0, b = 0.0
        for layer in subset {
            guard let i = slots[ObjectIdentifier(layer)] else { continue }
            f += forwardSeconds[i]; b += backwardSeconds[i]
        }
        return (f, b)
    }

    @inline(__always)
    func record(_ layer: Layer, forward: Bool, since start: Double) {
        guard let i = slots[ObjectIdentifier(layer)] else { return }
        let elapsed = LayerProfiler.now() - start
        if forward { forwardSeconds[i] += elapsed } else { backwardSeconds[i] += elapsed }
    }

    /// The clock `now()` reads: monotonic wall time by default; the calling thread's CPU time when set
    /// to `CLOCK_THREAD_CPUTIME_ID`, which on a shared machine excludes the time other processes hold the
    /// core (meaningful with one BLAS thread, when all the work runs on the calling thread).
    nonisolated(unsafe) public static var clock = CLOCK_MONOTONIC

    /// Seconds on `clock`.
    @inline(__always)
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
