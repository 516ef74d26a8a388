import WireProtocol

/// `page_info` of a paged list.
public struct PageInfo: Sendable {
    public var total: Int64
    public var page: Int64
    public var count: Int64
    public init(total: Int64, page: Int64, count: Int64) {
        self.total = total
        self.page = page
        self.count = count
    }
    public var json: JSON {
        .object(JSONObject([("total", .int(total)), ("page", .int(page)), ("count", .int(count))]))
    }
}

/// Success answers in the API's envelope.
public enum Reply {
    public static let queryMessage = "查询成功"
    public static let mutationMessage = "操作成功"

    /// `{"status":0,"msg":…,"data":…,"page_info":…}`; `data` and `page_info` only when given.
    public static func ok(_ message: String = queryMessage, data: JSON? = nil, page: PageInfo? = nil) -> WireResponse {
        var body = JSONObject()
        body.append("status", .int(0))
        body.append("msg", .string(message))
        if let data { body.append("data", data) }
        if let page { body.append("page_info", page.json) }
        return WireResponse(status: 200, body: .object(body))
    }

    /// `ok`'s envelope written as text, with `data` written straight into it by the caller
    /// instead of built as a tree (list pages, the event feed): the same bytes as `ok`.
    public static func ok(_ message: String = queryMessage, capacity: Int, page: PageInfo? = nil,
                          writingData data: (inout JSONText) throws -> Void) rethrows -> WireResponse {
        var out = JSONText(capacity: capacity)
        out.raw(#"{"status":0,"msg":"#)
        out.string(message)
        out.raw(#","data":"#)
        try data(&out)
        if let page {
            out.raw(#","page_info":"#)
            out.value(page.json)
        }
        out.closeObject()
        return WireResponse(status: 200, jsonText: out)
    }

    /// A mutation's answer: `{"status":0,"msg":"操作成功","data":{"id":…}}`.
    public static func mutation(id: Int64, message: String = mutationMessage) -> WireResponse {
        ok(message, data: .object(JSONObject([("id", .int(id))])))
    }
}
