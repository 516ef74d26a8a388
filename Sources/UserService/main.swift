import ServiceKit

ServiceMain.run(ServiceDefinition(
    name: "users",
    migrations: UserSchema.migrations,
    routes: Groups.routes + Employees.routes + Menus.routes + Sessions.routes,
    onStart: { try Bootstrap.run($0) },
    hourly: { try Sessions.forgetExpired($0) }))
