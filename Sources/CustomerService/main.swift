import ServiceKit

// Routes arrive in later issues; until then every path answers 404 JSON.
ServiceMain.run(ServiceDefinition(
    name: "customers",
    migrations: [],
    routes: []))
