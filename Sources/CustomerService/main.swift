import ServiceKit

ServiceMain.run(ServiceDefinition(
    name: "customers",
    migrations: CustomerSchema.migrations,
    routes: Organizations.routes + Customers.routes))
