/// Values by 64-bit id, for the tables looked up on every request: a client's requests in flight
/// by wire id (`WireClient`), a service's kept names and rows by row id (`ReadCache`,
/// `SnapshotRows`). `Dictionary` runs SipHash (~90 instructions) on each lookup; here a lookup is
/// a multiply, a shift and a probe or two.
///
/// Open addressing under a multiplicative (Fibonacci) hash — the id itself would put sequential
/// ids in one run of slots — with linear probing; a removal shifts the entries after it back
/// (no tombstones), so a lookup stops at the first empty slot. At most half full. The ids are
/// ones the system assigned (wire ids, SQLite row ids), never values a client picks freely, so
/// the hash needs no secret seed. `@inlinable`: specialized in the modules that use it.
public struct IDTable<Value> {
    @usableFromInline
    struct Slot {
        @usableFromInline var id: UInt64
        @usableFromInline var value: Value?

        @inlinable
        init(id: UInt64, value: Value?) {
            self.id = id
            self.value = value
        }
    }

    @usableFromInline var slots: [Slot]
    /// 64 minus log2 of the slot count: the hash's top bits index the slots.
    @usableFromInline var shift: UInt64
    @usableFromInline var stored = 0

    /// How many values are kept.
    @inlinable
    public var count: Int { stored }

    @inlinable
    public init() {
        slots = [Slot](repeating: Slot(id: 0, value: nil), count: 16)
        shift = 60
    }

    @inlinable
    public var isEmpty: Bool { count == 0 }

    @inlinable @inline(__always)
    var mask: Int { slots.count - 1 }

    @inlinable @inline(__always)
    func home(_ id: UInt64) -> Int { Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// The value kept under `id`, if any.
    @inlinable @inline(__always)
    public subscript(id: UInt64) -> Value? {
        var index = home(id)
        while let value = slots[index].value {
            if slots[index].id == id { return value }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Keeps `value` under `id` (replacing what was there).
    @inlinable
    public mutating func set(_ value: Value, for id: UInt64) {
        if (stored + 1) * 2 > slots.count { grow() }
        var index = home(id)
        while slots[index].value != nil {
            if slots[index].id == id {
                slots[index].value = value
                return
            }
            index = (index + 1) & mask
        }
        slots[index] = Slot(id: id, value: value)
        stored += 1
    }

    /// Takes out the value under `id`; nil when there is none.
    @inlinable
    public mutating func remove(_ id: UInt64) -> Value? {
        var index = home(id)
        while let value = slots[index].value {
            if slots[index].id == id {
                vacate(index)
                return value
            }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Takes out every value for which `take` is true, in no particular order.
    public mutating func removeAll(where take: (_ id: UInt64, _ value: Value) -> Bool) -> [Value] {
        var ids: [UInt64] = []
        for slot in slots {
            if let value = slot.value, take(slot.id, value) { ids.append(slot.id) }
        }
        return ids.compactMap { remove($0) }
    }

    /// Takes out every value, in no particular order.
    public mutating func removeAll() -> [Value] {
        let all = slots.compactMap(\.value)
        self = IDTable()
        return all
    }

    /// Empties slot `index`, moving back each following entry whose home is not between the
    /// hole and it (cyclically), so every entry stays reachable from its home.
    @usableFromInline
    mutating func vacate(_ index: Int) {
        var hole = index
        var next = (index + 1) & mask
        while slots[next].value != nil {
            let distanceFromHome = (next - home(slots[next].id)) & mask
            let distanceFromHole = (next - hole) & mask
            if distanceFromHome >= distanceFromHole {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = Slot(id: 0, value: nil)
        stored -= 1
    }

    @usableFromInline
    mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(id: 0, value: nil), count: old.count * 2)
        shift -= 1
        stored = 0
        for slot in old {
            if let value = slot.value { set(value, for: slot.id) }
        }
    }
}

extension IDTable {
    /// The value kept under a row id.
    @inlinable @inline(__always)
    public subscript(row id: Int64) -> Value? { self[UInt64(bitPattern: id)] }

    /// Keeps `value` under a row id.
    @inlinable
    public mutating func set(_ value: Value, forRow id: Int64) { set(value, for: UInt64(bitPattern: id)) }
}
