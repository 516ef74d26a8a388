// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CRM",
    products: [
        .executable(name: "crm", targets: ["crm"]),
        .executable(name: "Gateway", targets: ["Gateway"]),
        .executable(name: "UserService", targets: ["UserService"]),
        .executable(name: "CustomerService", targets: ["CustomerService"]),
        .executable(name: "RecordService", targets: ["RecordService"]),
        .executable(name: "ContractService", targets: ["ContractService"]),
        .executable(name: "StatsService", targets: ["StatsService"]),
    ],
    dependencies: [],
    targets: [
        // C libraries and Linux headers, reached through module maps.
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite"),
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        .systemLibrary(name: "CLibCrypto", path: "Sources/CLibCrypto"),
        .systemLibrary(name: "CLinux", path: "Sources/CLinux"),

        // Frames, envelopes, JSON, event loop, multiplexed connections.
        .target(name: "WireProtocol", dependencies: ["CLinux"]),
        // Every route of the API declared once: gateway routing, OpenAPI, service routers.
        .target(name: "APICatalog"),
        // What every service repeats: SQLite, parameters, errors, roles, the main loop.
        .target(name: "ServiceKit", dependencies: ["WireProtocol", "APICatalog", "CSQLite", "CCrypt", "CLibCrypto", "CLinux"]),

        .executableTarget(name: "Gateway", dependencies: ["WireProtocol", "APICatalog", "CLinux"]),
        .executableTarget(name: "UserService", dependencies: ["ServiceKit"]),
        .executableTarget(name: "CustomerService", dependencies: ["ServiceKit"]),
        .executableTarget(name: "RecordService", dependencies: ["ServiceKit"]),
        .executableTarget(name: "ContractService", dependencies: ["ServiceKit"]),
        .executableTarget(name: "StatsService", dependencies: ["ServiceKit"]),
        .executableTarget(name: "crm", dependencies: ["WireProtocol", "APICatalog", "ServiceKit", "CLinux"]),

        // One component in process: no sockets beyond what the component itself opens.
        .testTarget(name: "WireProtocolTests", dependencies: ["WireProtocol"]),
        .testTarget(name: "ServiceKitTests", dependencies: ["ServiceKit", "WireProtocol"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "WireProtocol", "APICatalog"]),
        .testTarget(name: "UserServiceTests", dependencies: ["UserService", "ServiceKit", "WireProtocol"]),
        .testTarget(name: "RecordServiceTests", dependencies: ["RecordService", "ServiceKit", "WireProtocol"]),
        .testTarget(name: "ContractServiceTests", dependencies: ["ContractService", "ServiceKit", "WireProtocol"]),
        .testTarget(name: "StatsServiceTests", dependencies: ["StatsService", "ServiceKit", "WireProtocol"]),
        // The system through the real executables (`crm up`), over HTTP and Unix sockets, and the
        // catalog checked against the gateway and every service's definition.
        .testTarget(name: "ServiceTests", dependencies: ["Gateway", "ServiceKit", "WireProtocol", "APICatalog", "UserService", "CustomerService", "RecordService", "ContractService", "StatsService"]),
    ],
    swiftLanguageModes: [.v6]
)
