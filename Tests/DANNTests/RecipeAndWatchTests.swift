import XCTest
@testable import DANN

/// The per-task recipes, configs saved before the new settings existed, and the pinned-domain warning.
final class RecipeAndWatchTests: XCTestCase {
    func testRecipesAreSmallBNWithTargetStatistics() {
        let empty = TestPaths.temporaryDirectory("recipe-data").path
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let mm = Recipes.recommended(source: .mnist, target: .mnistM, dataDir: empty)
        XCTAssertEqual(mm.arch, "small-bn")
        XCTAssertEqual(mm.runningStats, .target)
        XCTAssertEqual(mm.epochs, 10)
        XCTAssertEqual(mm.optimizer, .sgd)
        XCTAssertEqual(mm.lr, 0.01)
        XCTAssertEqual(mm.domainWeight, 1)
        // MNIST-M → MNIST: the adversary at a tenth (the best DANN setting measured for that direction).
        XCTAssertEqual(Recipes.recommended(source: .mnistM, target: .mnist, dataDir: empty).domainWeight, 0.1)
        XCTAssertEqual(Recipes.recommended(source: .svhn, target: .mnist, dataDir: empty).domainWeight, 1)
        // SVHN → MNIST on the 1,083-image sample (no full SVHN under the data folder): many more epochs.
        XCTAssertEqual(Recipes.recommended(source: .svhn, target: .mnist, dataDir: empty).epochs, 100)
        XCTAssertNoThrow(try mm.validate())
    }

    /// A config.json written before --domain-weight, --optimizer etc. existed still resumes: the missing
    /// settings take their defaults, which reproduce the old behaviour.
    func testConfigWithoutNewSettingsReadsWithDefaults() throws {
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainingConfig())) as! [String: Any]
        for key in ["domainWeight", "lambdaMax", "optimizer", "adamBeta1", "adamBeta2", "adamEpsilon", "runningStats"] {
            XCTAssertNotNil(old.removeValue(forKey: key), key)
        }
        old["arch"] = "small"
        let text = String(decoding: try JSONSerialization.data(withJSONObject: old), as: UTF8.self)
        let config = try TrainingConfig.fromJSON(text, path: "old/config.json")
        XCTAssertEqual(config.arch, "small")
        XCTAssertEqual(config.domainWeight, 1)
        XCTAssertEqual(config.lambdaMax, 1)
        XCTAssertEqual(config.optimizer, .sgd)
        XCTAssertEqual(config.runningStats, .everyDomain)
        XCTAssertThrowsError(try TrainingConfig.fromJSON("[1]", path: "bad/config.json")) { error in
            XCTAssertTrue("\(error)".contains("bad/config.json"))
        }
    }

    func testNewFlagsAreValidatedByName() {
        var c = TrainingConfig()
        c.domainWeight = -1
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--domain-weight")) }
        c = TrainingConfig(); c.lambdaMax = .nan
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--lambda-max")) }
        c = TrainingConfig(); c.clipGradNorm = 0
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--clip-grad-norm")) }
        c = TrainingConfig(); c.adamBeta2 = 1
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("--adam-beta2")) }
    }

    func testDomainWatchWarnsOncePerPinnedStretch() {
        var watch = DomainAccuracyWatch(margin: 0.02, patience: 5)
        var warnings: [Int] = []
        // 4 pinned at 1, a break, 6 pinned at 1 (warns at the 5th), 3 more (no repeat), then 5 pinned at 0.
        let series: [Double] = [1, 1, 0.99, 1, 0.6] + Array(repeating: 1, count: 9) + Array(repeating: 0.01, count: 5)
        for (step, a) in series.enumerated() {
            if let text = watch.observe(domainAccuracy: a, step: step + 1) {
                warnings.append(step + 1)
                XCTAssertTrue(text.contains("domain accuracy has been"), text)
            }
        }
        XCTAssertEqual(warnings, [10, 19])
    }
}
