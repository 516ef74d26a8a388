/// Each gram's ids, ascending (`SearchIndex`'s lists), laid out for memory: at 100,000 customers
/// there are ~180,000 distinct grams, three in four of them in one or two names, so a gram's
/// key is 16 bytes with no allocation (grams of up to 15 bytes: every gram of four characters
/// of up to three bytes each) and its first two ids sit in the entry itself; a longer list
/// spills into an array.
struct GramTable {
    /// A gram of at most 15 bytes: bytes 0–7 in `low`, 8–14 in `high`, the length in `high`'s top byte.
    struct Short: Hashable {
        var low: UInt64 = 0
        var high: UInt64 = 0
    }

    /// A gram as the table looks it up.
    enum Key: Hashable {
        case short(Short)
        case long([UInt8])

        init(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard bytes.count <= 15 else {
                self = .long(Array(bytes))
                return
            }
            var short = Short(low: 0, high: UInt64(bytes.count) << 56)
            for (i, byte) in bytes.enumerated() {
                if i < 8 { short.low |= UInt64(byte) << (8 * i) } else { short.high |= UInt64(byte) << (8 * (i - 8)) }
            }
            self = .short(short)
        }

        init(_ bytes: [UInt8]) {
            self = bytes.withUnsafeBufferPointer { Key($0) }
        }
    }

    /// One gram's ids: up to two in `first` and `second` (0: none; ids are positive), more in
    /// `more` (then the only place they are).
    struct Postings {
        var first: UInt32 = 0
        var second: UInt32 = 0
        var more: [UInt32]?

        /// The ids, ascending (the spilled array itself, not a copy).
        var ids: [UInt32] {
            if let more { return more }
            return first == 0 ? [] : second == 0 ? [first] : [first, second]
        }

        var isEmpty: Bool { more == nil && first == 0 }

        mutating func insert(_ id: UInt32) {
            if more != nil {
                more?.insertSorted(id)
            } else if first == 0 {
                first = id
            } else if id == first || id == second {
                return
            } else if second == 0 {
                (first, second) = id > first ? (first, id) : (id, first)
            } else {
                var all = [first, second]
                all.insertSorted(id)
                (first, second, more) = (0, 0, all)
            }
        }

        mutating func remove(_ id: UInt32) {
            if more != nil {
                more?.removeSorted(id)
                if let more, more.count <= 2 {
                    (first, second) = (more.first ?? 0, more.count == 2 ? more[1] : 0)
                    self.more = nil
                }
            } else if id == second {
                second = 0
            } else if id == first {
                (first, second) = (second, 0)
            }
        }
    }

    private var short: [Short: Postings] = [:]
    private var long: [[UInt8]: Postings] = [:]

    var count: Int { short.count + long.count }

    func postings(_ key: Key) -> Postings? {
        switch key {
        case .short(let gram): short[gram]
        case .long(let gram): long[gram]
        }
    }

    mutating func insert(_ id: UInt32, _ gram: UnsafeBufferPointer<UInt8>) {
        switch Key(gram) {
        case .short(let key): short[key, default: Postings()].insert(id)
        case .long(let key): long[key, default: Postings()].insert(id)
        }
    }

    mutating func remove(_ id: UInt32, _ gram: UnsafeBufferPointer<UInt8>) {
        switch Key(gram) {
        case .short(let key):
            short[key]?.remove(id)
            if short[key]?.isEmpty == true { short[key] = nil }
        case .long(let key):
            long[key]?.remove(id)
            if long[key]?.isEmpty == true { long[key] = nil }
        }
    }
}

extension Array where Element == UInt32 {
    /// Where `id` is in this ascending array, or where it would go.
    func sortedPosition(of id: UInt32) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if self[mid] < id { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Whether this ascending array holds `id`.
    func sortedContains(_ id: UInt32) -> Bool {
        let at = sortedPosition(of: id)
        return at < count && self[at] == id
    }

    /// Inserts `id` in order unless it is there (a new id is the largest: appended).
    mutating func insertSorted(_ id: UInt32) {
        guard let last, last >= id else { return append(id) }
        let at = sortedPosition(of: id)
        if self[at] != id { insert(id, at: at) }
    }

    /// Removes `id` if it is there.
    mutating func removeSorted(_ id: UInt32) {
        let at = sortedPosition(of: id)
        if at < count && self[at] == id { remove(at: at) }
    }
}
