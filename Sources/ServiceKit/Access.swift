@_exported import APICatalog
@_exported import WireProtocol

// `Role` and `Access` are declared with the routes in APICatalog (re-exported here, so a
// service importing ServiceKit sees them).


extension Caller {
    public var roleValue: Role? { Role(rawValue: role) }
    public var isAdmin: Bool { role == Role.admin.rawValue }

    /// "Delete or change status of business rows": admins always, employees only rows they
    /// created, couriers never.
    public func mayChangeRow(createdBy creator: Int64?) -> Bool {
        switch roleValue {
        case .admin: return true
        case .employee: return creator == id
        default: return false
        }
    }

    public func requireMayChangeRow(createdBy creator: Int64?) throws(APIError) {
        guard mayChangeRow(createdBy: creator) else {
            throw .forbidden(roleValue == .employee ? "employees may change only rows they created" : "your role may not change this row")
        }
    }
}
