import ArgumentParser
import XCTest
@testable import DANN
@testable import dann_dist

/// One declaration per setting: every TrainingConfig property has a `train` flag of the same name, every flag
/// is a setting (or one of `Train.runFlags`), and `--resume`'s override and identity check cover every setting.
/// A setting added in one place and not the other fails here, not silently in a resumed run.
final class SettingsTests: XCTestCase {
    /// Flags spelled other than `--` + the kebab case of their setting: part of the command-line contract.
    static let spellings = ["dataDir": "--data", "initPath": "--init", "bucketMegabytes": "--bucket-mb", "shuffle": "--no-shuffle"]
    /// A command line every case starts from (MNIST → MNIST: the recipe does not depend on the data folder).
    static let baseline = ["--source", "mnist", "--target", "mnist", "--out", "runs/settings-test"]

    func testEverySettingHasAFlagAndEveryFlagASetting() throws {
        let settings = Set(TrainingConfig.settingNames)
        XCTAssertEqual(TrainingConfig.settingNames.count, settings.count)
        let flags = try flagProperties()
        XCTAssertEqual(Set(flags.keys).subtracting(Train.runFlags), settings,
                       "train's flags (minus Train.runFlags) and TrainingConfig's properties must carry the same names")
        XCTAssertTrue(Train.runFlags.isSubset(of: flags.keys), "Train.runFlags names flags that do not exist")
        XCTAssertTrue(Train.runFlags.isDisjoint(with: settings))
        for (name, value) in flags where !Train.runFlags.contains(name) {
            XCTAssertTrue(value is SettingArgument, "--\(name) must be an optional @Option or a Bool @Flag (nil: not given)")
        }
        XCTAssertTrue(TrainingConfig.resumableSettings.isSubset(of: settings))
        XCTAssertTrue(Set(TrainingConfig.givenTogether.keys).union(TrainingConfig.givenTogether.values.joined()).isSubset(of: settings))
        for (name, spelled) in Self.spellings { XCTAssertTrue(settings.contains(name), "\(name) (\(spelled))") }
    }

    /// config.json keys are the setting names (no CodingKeys renames them), so resume can merge by name.
    func testCodableKeysAreTheSettingNames() throws {
        // Every setting given (so that no optional is left out of the JSON), --steps standing for --epochs.
        let (everything, _) = try requested(TrainingConfig.settingNames.filter { $0 != "epochs" }.flatMap { try sample($0) })
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(try everything.json().utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), Set(TrainingConfig.settingNames))
    }

    /// Each flag sets its setting and nothing else, marks it explicit, and resume's override copies exactly it;
    /// the identity check sees a change of every setting outside `resumableSettings` and of none inside.
    func testEachFlagSetsOverridesAndIdentifiesItsSetting() throws {
        guard Set(try flagProperties().keys).subtracting(Train.runFlags) == Set(TrainingConfig.settingNames) else {
            return XCTFail("flags and settings differ (see testEverySettingHasAFlagAndEveryFlagASetting)")
        }
        let (base, baseExplicit) = try requested([])
        XCTAssertEqual(baseExplicit, ["source", "target", "out"])
        for name in TrainingConfig.settingNames {
            let words = try sample(name)
            let (changed, explicit) = try requested(words)
            XCTAssertEqual(explicit, baseExplicit.union([name]).union(TrainingConfig.givenTogether[name] ?? []), "\(words)")
            let differing = TrainingConfig.settingNames.filter { value(of: $0, in: base) != value(of: $0, in: changed) }
            // A new task also brings its recipe's settings (e.g. MNIST-M → MNIST's domain weight): exactly those
            // on which the two tasks' recipes differ.
            var expected = [name]
            if name == "source" || name == "target" {
                let before = Recipes.recommended(source: base.source, target: base.target, dataDir: base.dataDir)
                let after = Recipes.recommended(source: changed.source, target: changed.target, dataDir: changed.dataDir)
                expected = TrainingConfig.settingNames.filter {
                    $0 == name || (!["source", "target"].contains($0) && value(of: $0, in: before) != value(of: $0, in: after))
                }
            }
            XCTAssertEqual(differing, expected, "\(words) sets exactly \(expected)")
            XCTAssertEqual(try base.overriding(with: changed, keys: Set(expected)), changed, "override of \(name)")
            XCTAssertEqual(try changed.overriding(with: base, keys: Set(expected)), base, "override of \(name) back")
            let flag = TrainingConfig.kebabCase(name)
            if TrainingConfig.resumableSettings.contains(name) {
                XCTAssertEqual(base.runIdentity, changed.runIdentity, "\(name) is resumable")
            } else {
                XCTAssertNotEqual(base.runIdentity[flag], changed.runIdentity[flag], "\(name) is part of the identity as --\(flag)")
            }
        }
    }

    /// The identity names every setting outside `resumableSettings` by a flag `train` accepts, since the
    /// refusal says `--flag saved (asked new)`.
    func testIdentityKeysAreFlags() throws {
        let identity = TrainingConfig().runIdentity
        let expected = Set(TrainingConfig.settingNames).subtracting(TrainingConfig.resumableSettings).map(TrainingConfig.kebabCase)
        XCTAssertEqual(Set(identity.keys), Set(expected))
        for name in TrainingConfig.settingNames where !TrainingConfig.resumableSettings.contains(name) {
            var words = try sample(name)
            words[0] = "--" + TrainingConfig.kebabCase(name)
            XCTAssertNoThrow(try Train.parse(Self.baseline + words), "--\(TrainingConfig.kebabCase(name))")
        }
        var c = TrainingConfig()
        c.clipGradNorm = 2.5
        c.steps = 40
        XCTAssertEqual(c.runIdentity["clip-grad-norm"], "2.5")
        XCTAssertEqual(TrainingConfig().runIdentity["clip-grad-norm"], "none")
        XCTAssertEqual(c.runIdentity["epochs"], "-", "--epochs plays no part once --steps is set")
        XCTAssertEqual(TrainingConfig().runIdentity["epochs"], "100")
        c.source = .mnistM
        XCTAssertEqual(c.runIdentity["source"], "mnist_m")
    }

    /// Non-finite values reach `validate` and its message (they travel through the JSON merge as strings), and a
    /// seed above Int64.max keeps every bit.
    func testExtremeValuesSurviveTheMerge() throws {
        let (nan, _) = try requested(["--lr", "nan", "--gamma", "-inf", "--seed", "18446744073709551615"])
        XCTAssertTrue(nan.lr.isNaN)
        XCTAssertEqual(nan.gamma, -.infinity)
        XCTAssertEqual(nan.seed, .max)
        XCTAssertThrowsError(try nan.validate()) { XCTAssertTrue("\($0)".hasPrefix("--lr must be positive, not nan"), "\($0)") }
    }

    // MARK: - Helpers

    /// train's flags by property name (the property wrappers' storage, `_name`).
    private func flagProperties() throws -> [String: Any] {
        let train = try Train.parse([])
        var flags: [String: Any] = [:]
        for child in Mirror(reflecting: train).children {
            guard let label = child.label, label.hasPrefix("_") else { continue }
            flags[String(label.dropFirst())] = child.value
        }
        return flags
    }

    private func requested(_ words: [String]) throws -> (TrainingConfig, Set<String>) {
        try Train.parse(Self.baseline + words).requestedConfig()
    }

    private func value(of name: String, in config: TrainingConfig) -> String? {
        Mirror(reflecting: config).children.first { $0.label == name }.map { TrainingConfig.describe($0.value) }
    }

    /// Command-line words that give setting `name` a value other than the baseline's.
    private func sample(_ name: String) throws -> [String] {
        let flag = Self.spellings[name] ?? "--" + TrainingConfig.kebabCase(name)
        let current = try XCTUnwrap(Mirror(reflecting: TrainingConfig()).children.first { $0.label == name }?.value, name)
        var type = "\(Swift.type(of: current))"
        if type.hasPrefix("Optional<") { type = String(type.dropFirst("Optional<".count).dropLast()) }
        switch type {
        case "Bool": return [flag]
        case "Int": return [flag, "7"]
        case "Double": return [flag, "0.375"]
        case "UInt64": return [flag, "12345678901234567891"]
        case "String": return [flag, "value-of-\(name)"]
        case "DatasetName": return [flag, "mnist_m"]
        case "OptimizerKind": return [flag, "adam"]
        case "RunningStatistics": return [flag, "both"]
        case "AllreduceMode": return [flag, "single"]
        case "AllreduceDType": return [flag, "bf16"]
        default:
            XCTFail("no sample value for \(name) of type \(type): add one here")
            return []
        }
    }
}
