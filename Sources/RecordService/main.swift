import ServiceKit

// The routes are declared in the catalog; until this service's issue is done each answers 501.
ServiceMain.run(ServiceDefinition(
    service: .records,
    migrations: [],
    routes: Route.notYetBuilt(.records)))
