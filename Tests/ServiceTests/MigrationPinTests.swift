import XCTest
import ServiceKit
@testable import UserService
@testable import CustomerService
@testable import RecordService
@testable import ContractService
@testable import StatsService

/// A migration that has shipped never changes: files that already applied it would never see
/// the change. Parts of the first migrations are generated from resource declarations
/// (`schemaPieces`), so a declaration change could alter them silently — this test pins every
/// migration's SQL. When it fails, restore the old SQL and add a new named migration instead.
final class MigrationPinTests: XCTestCase {
    static let pinned: [String: String] = [
        "users/001-groups-employees-sessions-menus": "0f0959f467ccf278778031ea2f7549f52d626b5b44eb463f7ee3eb83927272a8",
        "users/002-login-failures-request-id": "24f8e1673a0e5cdbbd348c8001311f079a34105b95c9641e65b5be070dd1c7c3",
        "customers/001-organizations-customers-grams-counters": "6386e817ab18b7ea1e7535b4e16e3b40a05b050cca05173b32bd430390ca7d4c",
        "records/001-potentials-follows-demands": "890422b0f74661d18cd9d8be306ca0f3d5cc00b071cf80b8cd3fe1383dc2e892",
        "contracts/001-satisfactions-contracts": "3df4be4434225b71be30dc26865923d4e5dfafbb95c01d3d722974c6e76f7b0a",
        "users/003-link-lists": "2fdf596e9d2f550eb493cef0d80e842060bd3da2d2afcf7be183b181824c6a41",
        "customers/002-link-lists": "056f1997b4704f158877b2dcf76c3723bd32d744e43fa8d064cbf7446adee94c",
        "records/002-link-lists": "2053f12f631e96413177aa1551a3fd910bc8eb755cead9739f002f582bd97e81",
        "contracts/002-link-lists": "ee09f2458158823791be0ab21f17bfefe56853d3258150853b0750acfa1f9144",
    ]

    func testShippedMigrationsAreUnchanged() {
        var seen: [String: String] = [:]
        for definition in [ServiceDefinition.users, ServiceDefinition.customers, ServiceDefinition.records, ServiceDefinition.contracts, ServiceDefinition.stats] {
            for migration in definition.migrations {
                seen["\(definition.name)/\(migration.name)"] = SessionToken.hex(SessionToken.sha256(Array(migration.sql.utf8)))
            }
        }
        for (key, digest) in Self.pinned {
            XCTAssertEqual(seen[key], digest, "\(key) changed after it shipped: restore it and add a new migration")
        }
        for key in seen.keys where Self.pinned[key] == nil {
            XCTFail("\(key) is new: pin it here (\(seen[key] ?? "")) once it ships")
        }
    }
}
