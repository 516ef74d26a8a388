import WireProtocol

/// An error answered to the client as `{"status":1,"msg":…}` with its HTTP status.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String

    public init(status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public static func badRequest(_ message: String) -> APIError { APIError(status: 400, message) }
    public static func unauthorized(_ message: String = "not logged in") -> APIError { APIError(status: 401, message) }
    public static func forbidden(_ message: String = "your role may not do this") -> APIError { APIError(status: 403, message) }
    public static func notFound(_ message: String) -> APIError { APIError(status: 404, message) }
    public static func methodNotAllowed(_ message: String) -> APIError { APIError(status: 405, message) }
    public static func conflict(_ message: String) -> APIError { APIError(status: 409, message) }
    public static func unprocessable(_ message: String) -> APIError { APIError(status: 422, message) }
    public static func tooManyRequests(_ message: String) -> APIError { APIError(status: 429, message) }
    public static func unavailable(_ message: String) -> APIError { APIError(status: 503, message) }
    public static func `internal`(_ message: String = "internal error") -> APIError { APIError(status: 500, message) }

    public var description: String { "\(status) \(message)" }

    public var response: WireResponse {
        WireResponse(status: status, body: .object(JSONObject([("status", .int(1)), ("msg", .string(message))])))
    }
}
