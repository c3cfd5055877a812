#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The DANN paper's annealing, with p = step / totalSteps (step counted from 0, before the update).
public struct Schedules: Equatable, Sendable {
    public var learningRate: Double = 0.01
    public var alpha: Double = 10
    public var beta: Double = 0.75
    public var gamma: Double = 10
    public var lambdaMax: Double = 1

    public init(learningRate: Double = 0.01, alpha: Double = 10, beta: Double = 0.75, gamma: Double = 10, lambdaMax: Double = 1) {
        self.learningRate = learningRate
        self.alpha = alpha
        self.beta = beta
        self.gamma = gamma
        self.lambdaMax = lambdaMax
    }

    public static func progress(step: Int, totalSteps: Int) -> Double {
        totalSteps > 0 ? Double(step) / Double(totalSteps) : 0
    }

    /// lr_p = lr0 / (1 + α p)^β
    public func learningRate(progress p: Double) -> Double { learningRate / pow(1 + alpha * p, beta) }

    /// λ_p = λ_max · (2 / (1 + exp(−γ p)) − 1)
    public func lambda(progress p: Double) -> Double { lambdaMax * (2 / (1 + exp(-gamma * p)) - 1) }
}
