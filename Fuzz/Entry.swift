// libFuzzer entry for the DANN readers. Not part of the Swift package: scripts/fuzz.sh compiles this file,
// the DANN library sources and Tests/DANNTests/FuzzTargets.swift into one binary with
// `swiftc -sanitize=fuzzer,address -D DANN_FUZZ_BUILD -module-name DANN` (see the script for why).
//
// The target is chosen by the environment: DANN_FUZZ_TARGET=idx|mat|tar|image|safetensors|checkpoint|
// config|mnistm. Scratch files go to DANN_FUZZ_SCRATCH (a folder, created if missing; default
// /dev/shm/dann-fuzz-PID). A DANNError is a handled input; anything else aborts, so libFuzzer saves it.
import Foundation

nonisolated(unsafe) private var fuzzTarget: FuzzTargets.Target = .idx
nonisolated(unsafe) private var fuzzScratch = ""
/// DANN_FUZZ_VERBOSE=1: print each input's outcome (loaded, or the DANNError), for running seeds by hand.
nonisolated(unsafe) private var fuzzVerbose = false

@_cdecl("LLVMFuzzerInitialize")
public func LLVMFuzzerInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    let environment = ProcessInfo.processInfo.environment
    guard let name = environment["DANN_FUZZ_TARGET"], let target = FuzzTargets.Target(rawValue: name) else {
        let names = FuzzTargets.Target.allCases.map(\.rawValue).joined(separator: "|")
        fputs("dann-fuzz: set DANN_FUZZ_TARGET to one of \(names)\n", stderr)
        exit(2)
    }
    fuzzTarget = target
    fuzzVerbose = environment["DANN_FUZZ_VERBOSE"] == "1"
    fuzzScratch = environment["DANN_FUZZ_SCRATCH"] ?? "/dev/shm/dann-fuzz-\(getpid())"
    do {
        try FileManager.default.createDirectory(atPath: fuzzScratch, withIntermediateDirectories: true)
    } catch {
        fputs("dann-fuzz: cannot create \(fuzzScratch): \(error)\n", stderr)
        exit(2)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 && data != nil ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    do {
        try FuzzTargets.run(fuzzTarget, bytes, directory: fuzzScratch,
                            log: fuzzVerbose ? { fputs("dann-fuzz: \(size) bytes: stage error: \($0.message)\n", stderr) } : nil)
        if fuzzVerbose { fputs("dann-fuzz: \(size) bytes: loaded\n", stderr) }
    } catch is DANNError {
        // The contract: bad input ends in one DANNError.
    } catch {
        fputs("dann-fuzz FINDING: \(error)\n", stderr)
        abort()
    }
    return 0
}
