/// Row ids to positions in the caller's arrays, for the caches a list page looks tens of ids
/// up in on every request (`ReadCache`'s names, `SnapshotRows`' rows): open addressing with
/// linear probing under a multiplicative (Fibonacci) hash. `Dictionary` hashes each `Int64`
/// with SipHash, ~90 instructions, which was 4 % of a follow page's service time; here a
/// lookup is a multiply, a shift and a probe or two. The keys are ids SQLite assigned to rows
/// (consecutive runs spread evenly under this hash), never values a client picks freely, so
/// the hash needs no secret seed. `Int64.min` is never kept: looking it up finds nothing.
struct IDTable {
    private static let empty = Int64.min
    private var keys: [Int64]
    private var values: [Int32]
    /// 64 − log2(capacity): the hash's top bits index the table.
    private var shift: UInt64
    private(set) var count = 0

    init() {
        keys = [Int64](repeating: IDTable.empty, count: 16)
        values = [Int32](repeating: 0, count: 16)
        shift = 60
    }

    private func slot(of id: Int64) -> Int {
        Int(truncatingIfNeeded: (UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The value kept for `id`, if any.
    subscript(id: Int64) -> Int32? {
        guard id != IDTable.empty else { return nil }
        let mask = keys.count - 1
        var at = slot(of: id)
        while true {
            let key = keys[at]
            if key == id { return values[at] }
            if key == IDTable.empty { return nil }
            at = (at + 1) & mask
        }
    }

    /// Keeps `value` for `id` (replacing what was kept); `Int64.min` is not kept.
    mutating func set(_ id: Int64, _ value: Int32) {
        guard id != IDTable.empty else { return }
        if (count + 1) * 2 > keys.count { grow() }
        let mask = keys.count - 1
        var at = slot(of: id)
        while keys[at] != IDTable.empty && keys[at] != id { at = (at + 1) & mask }
        if keys[at] == IDTable.empty { count += 1 }
        keys[at] = id
        values[at] = value
    }

    private mutating func grow() {
        let old = (keys, values)
        keys = [Int64](repeating: IDTable.empty, count: old.0.count * 2)
        values = [Int32](repeating: 0, count: old.0.count * 2)
        shift -= 1
        count = 0
        for (key, value) in zip(old.0, old.1) where key != IDTable.empty { set(key, value) }
    }
}
