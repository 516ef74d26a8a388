import ServiceKit

extension ServiceDefinition {
    /// UserService: groups, employees, menus, sessions (`main.swift` runs it; tests open it in process).
    static let users = ServiceDefinition(
        service: .users,
        migrations: UserSchema.migrations,
        routes: Groups.routes + Employees.routes + Menus.routes + Sessions.routes,
        onStart: { database in
            try Bootstrap.run(database)
            // A login's stored answer holds its session token: blank it soon after its replay window,
            // overwriting the old bytes rather than leaving them in the page's free space.
            try database.sync { db in try db.execute("PRAGMA secure_delete = ON") }
            database.every(seconds: 60) { try IdempotencyStore.forgetExpiredSecrets($0) }
        },
        hourly: { try Sessions.forgetExpired($0) })
}
