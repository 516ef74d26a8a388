import ServiceKit

ServiceMain.run(ServiceDefinition(
    name: "users",
    migrations: UserSchema.migrations,
    routes: Groups.routes + Employees.routes + Menus.routes + Sessions.routes,
    onStart: { database in
        try Bootstrap.run(database)
        // A login's stored answer holds its session token: blank it soon after its replay window.
        database.every(seconds: 60) { try IdempotencyStore.forgetExpiredSecrets($0) }
    },
    hourly: { try Sessions.forgetExpired($0) }))
