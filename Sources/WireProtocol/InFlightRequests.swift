/// A `WireClient`'s requests written to one connection and not answered yet, by wire id.
///
/// Open addressing with a multiplicative (Fibonacci) hash of the id: one multiply, where a
/// `Dictionary` ran SipHash on each insert and each answer. (The id itself would put a client's
/// sequential ids in one run of slots, which every removal would have to scan.) Linear probing;
/// a removal shifts the entries after it back (no tombstones), so a lookup stops at the first
/// empty slot. At most half full. Loop-thread confined.
struct InFlightRequests {
    private struct Slot {
        var id: UInt64
        var pending: WireClient.Pending?
    }
    private var slots = [Slot](repeating: Slot(id: 0, pending: nil), count: 16)
    /// 64 minus log2 of the slot count: the hash's top bits index the slots.
    private var shift: UInt64 = 60
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    private var mask: Int { slots.count - 1 }

    private func home(_ id: UInt64) -> Int { Int(truncatingIfNeeded: (id &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// Adds `pending` under `id` (replacing what was there under the same id).
    mutating func insert(_ pending: WireClient.Pending, id: UInt64) {
        if (count + 1) * 2 > slots.count { grow() }
        var index = home(id)
        while slots[index].pending != nil {
            if slots[index].id == id {
                slots[index].pending = pending
                return
            }
            index = (index + 1) & mask
        }
        slots[index] = Slot(id: id, pending: pending)
        count += 1
    }

    /// Takes out the request sent under `id`; nil when there is none.
    mutating func remove(id: UInt64) -> WireClient.Pending? {
        var index = home(id)
        while let pending = slots[index].pending {
            if slots[index].id == id {
                vacate(index)
                return pending
            }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Takes out every request for which `take` is true, in no particular order.
    mutating func removeAll(where take: (_ id: UInt64, _ pending: WireClient.Pending) -> Bool) -> [WireClient.Pending] {
        var ids: [UInt64] = []
        for slot in slots {
            if let pending = slot.pending, take(slot.id, pending) { ids.append(slot.id) }
        }
        return ids.compactMap { remove(id: $0) }
    }

    /// Takes out every request, in no particular order.
    mutating func removeAll() -> [WireClient.Pending] {
        let all = slots.compactMap(\.pending)
        self = InFlightRequests()
        return all
    }

    /// Empties slot `index`, moving back each following entry whose home is not between the
    /// hole and it (cyclically), so every entry stays reachable from its home.
    private mutating func vacate(_ index: Int) {
        var hole = index
        var next = (index + 1) & mask
        while slots[next].pending != nil {
            let distanceFromHome = (next - home(slots[next].id)) & mask
            let distanceFromHole = (next - hole) & mask
            if distanceFromHome >= distanceFromHole {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = Slot(id: 0, pending: nil)
        count -= 1
    }

    private mutating func grow() {
        let old = slots
        slots = [Slot](repeating: Slot(id: 0, pending: nil), count: old.count * 2)
        shift -= 1
        count = 0
        for slot in old {
            if let pending = slot.pending { insert(pending, id: slot.id) }
        }
    }
}
