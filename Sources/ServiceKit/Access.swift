import WireProtocol

/// Roles (`role_id`): 1 administrator, 2 employee, 3 courier (通讯员).
public enum Role: Int64, Sendable, CaseIterable {
    case admin = 1
    case employee = 2
    case courier = 3
}

/// Who may call a route — the role table of API.md §1, declared once per route.
public enum Access: Sendable {
    /// No session needed (login, password change, internal calls from the gateway).
    case `public`
    /// A session whose role is in the set.
    case roles(Set<Role>)

    public static let anyone = Access.roles([.admin, .employee, .courier])
    public static let adminOnly = Access.roles([.admin])
    /// Administrators and employees (not couriers).
    public static let staff = Access.roles([.admin, .employee])
}

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
