// libFuzzer target: Params (Sources/ServiceKit/Params.swift), the API.md §1 parameter rules.
// The input is a JSON object when it parses as one; otherwise its text is the value of
// every parameter (as a form client would send it). Invariants beyond "no crash":
// - every refusal is a 400 whose message names the parameter;
// - ids are positive; id arrays hold at most 1,000 distinct positive ids;
// - money is 0…10^13 yuan in cents and `moneyText` reads back through `cents`;
// - text is trimmed and within its length in Unicode scalars;
// - times are normalized (normalizing again changes nothing), a window has start ≤ end;
// - paging: page ≥ 1, count 1…100, the offset fits;
// - a status filter answers one allowed value, an alias's values or nil (all).

private let names = ["a", "id", "ids", "page", "count", "status", "amount", "name", "start_time", "end_time", "day"]

/// A refusal of parameter `name` (or of one of `others`, for checks spanning several).
private func refused(_ error: APIError, _ name: String, or others: [String] = []) {
    invariant(error.status == 400, "\(name): status \(error.status)")
    invariant(([name] + others).contains { error.message.contains($0) }, "\(name): message '\(error.message)' does not name it")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParams(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    let values: JSONObject
    if case .object(let object)? = try? JSONParser.parse(input) {
        values = object
    } else {
        let text = JSON.string(String(decoding: input, as: UTF8.self))
        values = JSONObject(names.map { ($0, text) })
    }
    let params = Params(values)

    for name in names {
        do throws(APIError) {
            if let id = try params.id(name) { invariant(id > 0, "\(name): id \(id)") }
        } catch { refused(error, name) }
        do throws(APIError) {
            if let value = try params.int(name, oneOf: [1, 2, 3]) { invariant([1, 2, 3].contains(value), "\(name): \(value)") }
        } catch { refused(error, name) }
        do throws(APIError) {
            if let ids = try params.idArray(name) {
                invariant(ids.count <= Params.maxArrayCount, "\(name): \(ids.count) ids")
                invariant(ids.allSatisfy { $0 > 0 } && Set(ids).count == ids.count, "\(name): \(ids)")
            }
        } catch { refused(error, name) }
        do throws(APIError) {
            if let cents = try params.money(name) {
                invariant(cents >= 0 && cents <= Params.maxMoneyCents, "\(name): \(cents) cents")
                invariant(Params.cents(Params.moneyText(cents)) == cents, "\(name): moneyText(\(cents)) = \(Params.moneyText(cents))")
            }
        } catch { refused(error, name) }
        do throws(APIError) {
            if let text = try params.string(name, maxLength: 10) {
                invariant(text.unicodeScalars.count <= 10, "\(name): \(text.unicodeScalars.count) scalars")
                invariant(text == text.trimmingWhitespace, "\(name): '\(text)' is not trimmed")
            }
        } catch { refused(error, name) }
        do throws(APIError) {
            if let time = try params.time(name) {
                invariant(Timestamp.normalize(time, dateOnlyAllowed: false) == time, "\(name): time \(time) is not normal")
            }
        } catch { refused(error, name) }
        do throws(APIError) {
            if let date = try params.date(name) {
                invariant(date.utf8.count == 10 && Timestamp.normalize(date, dateOnlyAllowed: true) != nil, "\(name): date \(date)")
            }
        } catch { refused(error, name) }
        do throws(APIError) {
            if let filter = try params.statusFilter(name, allowed: [0, 1], aliases: ["open": [0, 1]], default: [1]) {
                invariant(filter == [0] || filter == [1] || filter == [0, 1], "\(name): filter \(filter)")
            }
        } catch { refused(error, name) }
    }
    do throws(APIError) {
        let paging = try params.paging()
        invariant(paging.page >= 1 && (1...Params.maxPageSize).contains(paging.count), "paging \(paging)")
        invariant(paging.offset >= 0 && paging.offset <= Int64(Int32.max), "offset \(paging.offset)")
    } catch { refused(error, "page", or: ["count"]) }
    do throws(APIError) {
        let window = try params.timeWindow()
        invariant(window.start <= window.end, "window \(window)")
    } catch { refused(error, "start_time", or: ["end_time"]) }
    return 0
}
