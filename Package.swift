// swift-tools-version:6.0
// Flowgate: a userspace TCP/UDP load-balancing proxy on libevent.
//
// Dependencies (each one costs CI build time, so each has a reason):
// - Yams: YAML with node marks, so config errors can name file:line:column.
// - swift-argument-parser: the two command lines (flowgated, flowgatectl).
// Everything else (JSON, SHA-256/HMAC for request signing, atomics via the
// standard library's Synchronization module) is in-tree or in the toolchain.
//
// Targets, dependencies pointing one way:
//   flowgated, flowgatectl (executables)
//     → FlowgateControl, FlowgateDataPlane (the two planes; control never
//       imports the data plane: the daemon wires them together)
//       → FlowgateSystem (syscalls, event loops, logging: the only Swift
//         that calls libevent or the C shim) and FlowgateCore (pure Swift)
//         → CLibevent, CFlowgateSys (System) / Yams (Core)
import PackageDescription

let package = Package(
    name: "Flowgate",
    products: [
        .executable(name: "flowgated", targets: ["flowgated"]),
        .executable(name: "flowgatectl", targets: ["flowgatectl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        // libevent 2.1 via pkg-config; the module map also links event_pthreads.
        .systemLibrary(
            name: "CLibevent",
            pkgConfig: "libevent",
            providers: [.apt(["libevent-dev"])]
        ),
        // GNU-only calls Swift's Glibc module hides (splice, pipe2, accept4,
        // recvmmsg/sendmmsg, F_SETPIPE_SZ, PKTINFO cmsg helpers).
        .target(name: "CFlowgateSys", cSettings: [.define("_GNU_SOURCE")]),
        // Pure Swift: model, validation, config decoding, hashing, algorithms.
        // Never imports libevent or Glibc-level socket code.
        .target(
            name: "FlowgateCore",
            dependencies: [.product(name: "Yams", package: "Yams")]
        ),
        // The foundation under both planes: syscall wrappers (SystemError),
        // SocketAddress, Log, Latch, LoopThread/MainLoop and their events,
        // the UDP batch calls, the Prometheus writer. Every Swift call into
        // libevent or CFlowgateSys is here.
        .target(
            name: "FlowgateSystem",
            dependencies: ["CLibevent", "CFlowgateSys"]
        ),
        // Workers, listeners, the TCP and UDP relays, health checks, metrics.
        .target(
            name: "FlowgateDataPlane",
            dependencies: ["FlowgateCore", "FlowgateSystem"]
        ),
        // A fleet on etcd (docs/cluster.md): the etcd v3 JSON-gateway client on
        // libevent's HTTP client, the cluster store, membership, shared persistence.
        .target(
            name: "FlowgateCluster",
            dependencies: ["FlowgateCore", "FlowgateSystem", "CLibevent"]
        ),
        // Control server, the AWS and ELB endpoints, signatures, state.
        .target(
            name: "FlowgateControl",
            dependencies: ["FlowgateCore", "FlowgateSystem"]
        ),
        .executableTarget(
            name: "flowgated",
            dependencies: [
                "FlowgateCore", "FlowgateSystem", "FlowgateDataPlane", "FlowgateControl", "FlowgateCluster",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "flowgatectl",
            dependencies: [
                "FlowgateCore", "FlowgateSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Pick-path micro-benchmark: a plain timing harness, no network.
        .executableTarget(name: "flowgate-pickbench", dependencies: ["FlowgateCore"], path: "bench/pick"),
        // HTTP head parser throughput (heads/s), same plain timing style.
        .executableTarget(name: "flowgate-httpbench", dependencies: ["FlowgateCore"], path: "bench/http"),
        // Flowgate's side of the HTTP parser differential test against llhttp.
        .executableTarget(name: "flowgate-httpparse", dependencies: ["FlowgateCore"], path: "Tests/Tools/HTTPParseDump"),
        .testTarget(name: "FlowgateCoreTests", dependencies: ["FlowgateCore"]),
        .testTarget(name: "FlowgateSystemTests", dependencies: ["FlowgateSystem"]),
        .testTarget(name: "FlowgateDataPlaneTests", dependencies: ["FlowgateDataPlane", "FlowgateSystem", "FlowgateCore"]),
        .testTarget(name: "FlowgateControlTests", dependencies: ["FlowgateControl", "FlowgateSystem", "FlowgateCore"]),
    ],
    swiftLanguageModes: [.v6]
)
