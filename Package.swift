// swift-tools-version:6.0
import PackageDescription

// Release builds keep Swift's checks (preconditions, overflow, bounds): the kernels work on unsafe pointers
// already, and -Ounchecked measured within noise of -O (bench --thread-clock, 1 thread, Xeon: small 1.5 %,
// small-bn 0 %, seed-bn 2.7 % ± 5 % faster) while it removed the preconditions that guard the gradient sync.
let fastMath: [SwiftSetting] = [.unsafeFlags(["-wmo"], .when(configuration: .release))]

let package = Package(
    name: "dann-dist",
    platforms: [.macOS(.v15)],   // Synchronization.Atomic (Parallel.swift)
    products: [
        .executable(name: "dann-dist", targets: ["dann-dist"]),
        .library(name: "DANN", targets: ["DANN"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg62-turbo-dev"])]),
        // Convolution micro-kernels with AVX-512/AVX2 intrinsics, chosen at run time (C: Swift cannot target
        // one function at an ISA the build's baseline lacks).
        .target(name: "CConvKernels", path: "Sources/CConvKernels", exclude: ["conv_tile.inc", "winograd_tile.inc"]),
        .target(name: "DANN", dependencies: ["CMPI", "COpenBLAS", "CZlib", "CPNG", "CJPEG", "CConvKernels"],
                swiftSettings: fastMath),
        .executableTarget(name: "dann-dist", dependencies: [
            "DANN", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // A test harness: MPI programs for CommunicatorMPITests (built beside dann-dist, not part of it).
        .executableTarget(name: "mpi-selftest", dependencies: [
            "DANN", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "Tests/MPISelfTest"),
        // The tests see `train`'s flags (SettingsTests) through the executable's module.
        .testTarget(name: "DANNTests", dependencies: [
            "DANN", "dann-dist", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
    ]
)
