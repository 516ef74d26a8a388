import Synchronization
import WireProtocol

/// A table the API lists, creates, updates and soft-deletes, declared once: its columns (which
/// also fix the answer's field order), statuses, creator rule, fuzzy search, counters, ordered
/// link lists and published event. From the declaration come the schema pieces (links, the
/// shipped search postings, counters), the list (filters, search, paging, totals from
/// counters), create/update (only the fields given, the folded search text, counters, links,
/// outbox — in the caller's transaction) and status changes; a resource's own rules plug in as hooks.
public final class Resource: Sendable {
    /// Singular, for messages ("organization").
    public let name: String
    public let table: String
    /// The id parameter of updates and status changes (`organization_id`).
    public let idParam: String
    /// In the answer's order; `id` first.
    public let columns: [Column]
    public let status: StatusRule
    /// The column (and parameter) naming the employee who created a row: employees change only
    /// their own rows, and only administrators may set it to someone else.
    public let creator: String?
    public let search: Search?
    /// Table of the counters that answer `page_info.total` without counting rows.
    public let counters: String?
    public let links: [Link]
    public let filters: [Filter]
    /// Parameters required on create (and never cleared on update); `alwaysRequired` on update too.
    public let required: [String]
    public let alwaysRequired: [String]
    /// The outbox event type carrying the `published` columns; nil publishes nothing.
    public let event: String?
    /// False for lists answered whole (no `page_info`).
    public let paged: Bool
    /// `ORDER BY` of lists, on the table alias `t` (default newest id first).
    public let ordering: String
    /// The time window lists filter on (`start_time`/`end_time`), if any.
    public let window: Window?
    /// Single-id columns answered with the name of the row they name (`organization_name`).
    public let references: [Reference]
    /// How long a write waits for referenced ids its local copies do not know yet (0: no wait).
    public let catchUpMillis: Int64
    /// Another name the id parameter is accepted under (the seed's `protent_id` for `potent_id`);
    /// `idParam` wins when both are sent.
    public let idAlias: String?
    /// The column (and parameter) naming the employee who last changed a row: the caller on
    /// every update unless given; only administrators may name another employee.
    public let editor: String?
    /// With a creator rule: only administrators and the row's creator may update a row (not
    /// only change its status).
    public let updatesByCreator: Bool

    public init(name: String, table: String, idParam: String, columns: [Column], status: StatusRule, creator: String? = nil,
                search: Search? = nil, counters: String? = nil, links: [Link] = [], filters: [Filter] = [],
                required: [String] = [], alwaysRequired: [String] = [], event: String? = nil, paged: Bool = true,
                ordering: String = "t.id DESC", window: Window? = nil, references: [Reference] = [], catchUpMillis: Int64 = 0,
                idAlias: String? = nil, editor: String? = nil, updatesByCreator: Bool = false) {
        self.name = name
        self.table = table
        self.idParam = idParam
        self.columns = columns
        self.status = status
        self.creator = creator
        self.search = search
        self.counters = counters
        self.links = links
        self.filters = filters
        self.required = required
        self.alwaysRequired = alwaysRequired
        self.event = event
        precondition(search == nil || event != nil, "\(name): a searched resource publishes its changes (SearchIndex follows them)")
        self.paged = paged
        self.ordering = ordering
        self.window = window
        self.references = references
        self.catchUpMillis = catchUpMillis
        self.idAlias = idAlias
        self.editor = editor
        self.updatesByCreator = updatesByCreator
        selectList = columns.map { "t.\"\($0.name)\"" }.joined(separator: ", ")
        pageSelectList = ([selectList] + links.map { "t.\"\($0.listColumn)\"" } + ["t.id"]).joined(separator: ", ")
        rowShape = table + " " + pageSelectList
        fields = columns.compactMap(\.field)
        answerPlan = AnswerPlan(columns: columns, references: references, links: links)
        publishPlan = PublishPlan(table: table, columns: columns, links: links)
        referenceExistsSQL = references.map { Resource.existsSQL($0.target) }
        linkExistsSQL = links.map { Resource.existsSQL($0.target) }
        linkInsertSQL = links.map { "INSERT INTO \($0.table)(\($0.ownerColumn), \($0.targetColumn), position) VALUES (?,?,?)" }
        plainLists = (0...Resource.plainListMaxStatuses).map { [table, pageSelectList, ordering] statusCount in
            [false, true].map { paged in
                let clause = statusCount == 0 ? "" : "WHERE t.status IN (\(SQLFilter.marks(statusCount)))"
                return PageQuery(table: table, selectList: pageSelectList, clause: clause, ordering: ordering, paged: paged, binds: [])
            }
        }
    }

    let selectList: String
    /// `selectList`, then each link's list column, then the row's id: what `writeRows` reads.
    let pageSelectList: String
    /// What kept rows of this resource are filed under (`SnapshotRows`): its table and columns.
    let rowShape: String
    /// How list rows are written as JSON text (keys encoded once).
    let answerPlan: AnswerPlan
    /// How the published state is read and written (SQL and keys made once).
    let publishPlan: PublishPlan
    /// Per reference and per link: whether a target row exists and is not deleted. Made once,
    /// with the links' insert: every create ran them from texts built anew (an allocation and a
    /// hash of the text each), on the writer.
    let referenceExistsSQL: [String]
    let linkExistsSQL: [String]
    let linkInsertSQL: [String]
    static func existsSQL(_ target: String) -> String { "SELECT 1 FROM \(target) WHERE id = ? AND status <> -1" }
    /// The queries of a list filtered by nothing but status (the usual page), made once per
    /// number of statuses (0: any) and kind (`[0]` whole, `[1]` paged) instead of per request:
    /// the same texts `list` would build (`SQLFilter.in`, `SQLFilter.clause`).
    let plainLists: [[PageQuery]]
    static let plainListMaxStatuses = 8
    /// The queries of the other lists (a filter, a window), by `WHERE` clause and kind.
    let filteredLists = PageQueries()
    /// The writable columns.
    public let fields: [Field]
}

/// A column of a resource's table.
public struct Column: Sendable {
    public var name: String
    /// How a request parameter writes it; nil for columns only the service sets.
    public var field: Field?
    /// Part of the state published in the resource's event.
    public var published: Bool
    /// How the stored value is answered.
    public var format: Format = .plain

    public enum Format: Sendable {
        case plain
        /// Integer cents answered as a string with two decimals (`"112.50"`), null when unset.
        case money
    }

    /// A column the service sets (id, times, status, creator).
    public static func fixed(_ name: String, published: Bool = false) -> Column { Column(name: name, field: nil, published: published) }
    /// A column written from the parameter of `field` (money fields are answered as money).
    public static func field(_ field: Field, published: Bool = false) -> Column {
        var column = Column(name: field.column, field: field, published: published)
        if case .money = field.kind { column.format = .money }
        return column
    }

    func answer(_ value: SQLValue) -> JSON {
        switch (format, value) {
        case (.money, .int(let cents)): return .string(Params.moneyText(cents))
        default: return value.json
        }
    }
}

/// The time window a list filters on: `start_time`/`end_time` over `column`, inclusive; `end`
/// defaults to now and `start` to `spanSeconds` before the end; a start after the end is a 400.
public struct Window: Sendable {
    public var column: String
    public var spanSeconds: Int64
    /// A table of row counts per status and month, day, hour and minute of `column`, kept by
    /// triggers (part of `schemaPieces`): a list filtered only by status and the window answers
    /// `page_info.total` from the whole units inside the window and counts rows only in the
    /// two partial minutes at its edges, so the total costs the same whatever the number of
    /// rows in the window (a busy day or hour included). nil: COUNT(*) of the rows.
    public var dayCounts: String?
    public init(column: String, spanSeconds: Int64 = 7 * 86_400, dayCounts: String? = nil) {
        self.column = column
        self.spanSeconds = spanSeconds
        self.dayCounts = dayCounts
    }

    /// The counted units: prefixes of `YYYY-MM-DD HH:MM:SS` (month, day, hour, minute).
    static let unitLengths = [7, 10, 13, 16]

    /// The count table (`level` is the unit's prefix length) and the triggers that keep it,
    /// for rows of `owner`.
    func dayCountSchema(owner: String) -> String {
        guard let counts = dayCounts else { return "" }
        let add = { (row: String) in
            Window.unitLengths.map { length in
                """
                    INSERT INTO \(counts)(status, level, period, n) SELECT \(row).status, \(length), substr(\(row)."\(column)", 1, \(length)), 1
                        WHERE \(row)."\(column)" IS NOT NULL ON CONFLICT(status, level, period) DO UPDATE SET n = n + 1;

                """
            }.joined()
        }
        let remove = { (row: String) in
            Window.unitLengths.map { length in
                "    UPDATE \(counts) SET n = n - 1 WHERE status = \(row).status AND level = \(length) AND period = substr(\(row).\"\(column)\", 1, \(length));\n"
            }.joined()
        }
        return """
        CREATE TABLE \(counts) (
            status INTEGER NOT NULL, level INTEGER NOT NULL, period TEXT NOT NULL, n INTEGER NOT NULL,
            PRIMARY KEY (status, level, period)
        ) WITHOUT ROWID;
        CREATE TRIGGER \(counts)_insert AFTER INSERT ON \(owner) BEGIN
        \(add("new"))END;
        CREATE TRIGGER \(counts)_update AFTER UPDATE OF status, "\(column)" ON \(owner) BEGIN
        \(remove("old"))\(add("new"))END;
        CREATE TRIGGER \(counts)_delete AFTER DELETE ON \(owner) BEGIN
        \(remove("old"))END;

        """
    }

    /// Rows with a status in `statuses` inside [start, end]: whole months, days, hours and
    /// minutes from the count table, rows only in the partial minutes at the edges (an index on
    /// (status, column) keeps that to one minute's rows). About twenty small indexed lookups per
    /// status, run as one statement; each lookup names one status (`status = ?`), since an
    /// `IN (?, …)` list made SQLite build a temporary b-tree for every one of them.
    func total(_ db: SQLiteConnection, table: String, counts: String, statuses: [Int64], start: String, end: String) throws -> Int64 {
        // Each status and each pair of bounds is bound once (numbered parameters, the statuses
        // first), however many lookups use it; the statement's text depends only on the shape
        // (the lookups' units, the number of statuses), so it is made once per shape.
        var binds: [SQLValue] = statuses.map { .int($0) }
        var shape = TotalShape(table: table, counts: counts, statuses: statuses.count, terms: [])
        // Bounds are times or unit markers: a unit's prefix sorts before every time in it, and
        // the prefix followed by "~" after every one of them.
        func count(_ from: String, _ to: String, level: Int) {
            guard level < Window.unitLengths.count else {
                binds += [.text(from), .text(to)]
                shape.terms.append(UInt8(level))
                return
            }
            let length = Window.unitLengths[level]
            let fromIsTime = from.utf8.count > length
            let toIsTime = !(to.hasSuffix("~") && to.utf8.count - 1 <= length)
            let first = fromIsTime ? String(from.prefix(length)) : from
            let last = toIsTime ? String(to.prefix(length)) : to
            if first == last { return count(from, to, level: level + 1) }
            binds += [.text(first), .text(last)]
            shape.terms.append(UInt8(level))
            if fromIsTime { count(from, first + "~", level: level + 1) }
            if toIsTime { count(last, to, level: level + 1) }
        }
        count(start, end, level: 0)
        let sql: String
        if let made = Window.totalSQLs.withLock({ $0[shape] }) {
            sql = made
        } else {
            sql = totalSQL(shape)
            Window.totalSQLs.withLock { made in
                if made.count >= 512 { made.removeAll() }
                made[shape] = sql
            }
        }
        return try db.scalar(sql, binds)
    }

    /// What the text of a `total` statement depends on: the lookups' units in order
    /// (`unitLengths` indexes; `unitLengths.count` for rows counted in the table).
    struct TotalShape: Hashable {
        var table: String
        var counts: String
        var statuses: Int
        var terms: [UInt8]
    }

    /// `total` statements by shape (a few dozen in practice; emptied if it ever reaches 512).
    private static let totalSQLs = Mutex<[TotalShape: String]>([:])

    /// One lookup per status and term: `status = ?` (an `IN (?, …)` list made SQLite build a
    /// temporary b-tree for each lookup), each term's bounds bound once.
    private func totalSQL(_ shape: TotalShape) -> String {
        var sql = "SELECT 0"
        for (t, level) in shape.terms.enumerated() {
            let from = "?\(shape.statuses + 2 * t + 1)", to = "?\(shape.statuses + 2 * t + 2)"
            for s in 1...max(1, shape.statuses) where shape.statuses > 0 {
                if Int(level) < Window.unitLengths.count {
                    sql += " + (SELECT COALESCE(SUM(n), 0) FROM \(shape.counts) WHERE status = ?\(s) AND level = \(Window.unitLengths[Int(level)])"
                        + " AND period > \(from) AND period < \(to))"
                } else {
                    sql += " + (SELECT COUNT(*) FROM \(shape.table) WHERE status = ?\(s) AND \"\(column)\" BETWEEN \(from) AND \(to))"
                }
            }
        }
        return sql
    }
}

/// A column holding one id of another table's row, answered with that row's name right after
/// it (`organization_id` → `organization_name`); ids written must name a row not deleted.
public struct Reference: Sendable {
    public var column: String
    public var target: String
    /// SQL for the name over the target's alias `x` (e.g. `x.groupName`).
    public var nameSQL: String
    public var nameKey: String
    public init(column: String, target: String, nameSQL: String, nameKey: String) {
        self.column = column
        self.target = target
        self.nameSQL = nameSQL
        self.nameKey = nameKey
    }

    var nameSource: ReadCache.Source { ReadCache.Source(table: target, nameSQL: nameSQL) }
}

/// The statuses a resource's rows take and how lists and status changes treat them.
public struct StatusRule: Sendable {
    public var values: [Int64]
    /// What a list shows when `status` is absent (nil: every status).
    public var defaultFilter: [Int64]?
    public var aliases: [String: [Int64]]
    /// The status of a new row.
    public var initial: Int64
    /// The status a status change sets when `status` is absent; nil makes `status` required.
    public var changeDefault: Int64?

    public init(values: [Int64], defaultFilter: [Int64]? = [1], aliases: [String: [Int64]] = [:], initial: Int64 = 1, changeDefault: Int64? = -1) {
        self.values = values
        self.defaultFilter = defaultFilter
        self.aliases = aliases
        self.initial = initial
        self.changeDefault = changeDefault
    }
}

/// Case-insensitive substring search on some text columns, through an n-gram index in memory
/// (`SearchIndex`); the folded texts live in the table's `name_fold` column. `grams` names the
/// posting table of the shipped migrations (no longer used).
public struct Search: Sendable {
    public var param: String
    public var grams: String
    public var texts: [String]
    public init(param: String, grams: String, texts: [String]) {
        self.param = param
        self.grams = grams
        self.texts = texts
    }

    /// Separates the folded texts in `name_fold`, so a match never spans two of them.
    static let separator = "\u{1F}"
    static let separatorByte: UInt8 = 0x1F

    /// `name_fold` of the texts: each folded, joined by `separator`.
    func fold(_ values: [String]) -> String {
        Search.joined(values.map(NgramIndex.fold))
    }

    /// `name_fold` of texts already folded.
    static func joined(_ folded: [String]) -> String {
        folded.joined(separator: separator)
    }

    /// The searched texts a write leaves the row with: what it sends, else what `current` holds
    /// (a cleared or non-text value, or none: "").
    func texts(of write: Write, current: Record?) -> [String] {
        texts.map { column in
            guard let sent = write.value(column) else { return current?.string(column) ?? "" }
            if case .text(let text) = sent { return text }
            return ""
        }
    }
}

/// An ordered list of ids of another table kept with each row (`organization_id` of a
/// customer, `group_id` of an employee): stored in the order given, answered as names and ids
/// in that order.
public struct Link: Sendable {
    /// The parameter holding the ids on create/update.
    public var param: String
    /// The list filter on it: one id (`organization_id`) or any of several (`group_ids`).
    public var filter: LinkFilter?
    public var table: String
    public var ownerColumn: String
    public var targetColumn: String
    /// The linked table (ids must name a row there that is not deleted) and its name column.
    public var target: String
    public var targetName: String
    /// Answer keys: the names and the ids.
    public var namesKey: String
    public var idsKey: String
    /// Prefix of the per-linked-id counters (`so` → `so:<status>:<id>`); nil counts none.
    public var counterPrefix: String?
    /// The first linked id as its own answer field, placed after a column (employee `group`).
    public var firstIDKey: (key: String, after: String)?
    /// Must hold at least one id (when given, and on create).
    public var nonEmpty: Bool
    /// SQL for a linked row's name over the target's alias `x`; default `x.<targetName>`.
    public var nameSQL: String?
    /// Part of the published state, as `idsKey` (the ids in order).
    public var published: Bool
    /// The target is a projection's copy of another service's rows: no foreign key to it,
    /// since a copy is dropped and rebuilt when its projection's version changes (docs/EVENTS.md).
    public var targetIsCopy: Bool

    public enum LinkFilter: Sendable {
        case one(String)
        case any(String)
    }

    public init(param: String, filter: LinkFilter? = nil, table: String, ownerColumn: String, targetColumn: String, target: String,
                targetName: String, namesKey: String, idsKey: String, counterPrefix: String? = nil,
                firstIDKey: (key: String, after: String)? = nil, nonEmpty: Bool = false, nameSQL: String? = nil, published: Bool = false,
                targetIsCopy: Bool = false) {
        self.param = param
        self.filter = filter
        self.table = table
        self.ownerColumn = ownerColumn
        self.targetColumn = targetColumn
        self.target = target
        self.targetName = targetName
        self.namesKey = namesKey
        self.idsKey = idsKey
        self.counterPrefix = counterPrefix
        self.firstIDKey = firstIDKey
        self.nonEmpty = nonEmpty
        self.nameSQL = nameSQL
        self.published = published
        self.targetIsCopy = targetIsCopy
    }

    /// The owner's column holding the linked ids in order as a JSON array (`[3,1]`), written
    /// with the link table (`Resource.replaceLinks`): list pages read it with their rows instead
    /// of looking up each row's links. The link table stays for filters and single rows.
    public var listColumn: String { "\(table)_ids" }

    var nameSource: ReadCache.Source { ReadCache.Source(table: target, nameSQL: nameSQL ?? "x.\(targetName)") }

    /// The link table's schema, for links of rows of `owner`. `targetForeignKey` false leaves
    /// out the foreign key to the target: needed when the target is a projection's copy, which a
    /// rebuild drops and refills (docs/EVENTS.md: no foreign keys between copied tables).
    public func schema(owner: String, targetForeignKey: Bool = true) -> String {
        """
        CREATE TABLE \(table) (
            \(ownerColumn) INTEGER NOT NULL REFERENCES \(owner)(id),
            \(targetColumn) INTEGER NOT NULL\(targetForeignKey && !targetIsCopy ? " REFERENCES \(target)(id)" : ""),
            position INTEGER NOT NULL,
            PRIMARY KEY (\(ownerColumn), \(targetColumn))
        ) WITHOUT ROWID;
        CREATE INDEX \(table)_target ON \(table)(\(targetColumn), \(ownerColumn));
        """
    }
}

/// A list filter besides status, search and links.
public enum Filter: Sendable {
    /// `param` = `column` (an id).
    case id(String, column: String)
    /// `param` = `column` (exact text; empty means no filter).
    case text(String, column: String)
    /// A condition of the resource's own: nil when its parameter is absent. It may consult the
    /// database (it runs in the list's read transaction).
    case custom(@Sendable (Params, SQLiteConnection) throws -> (sql: String, binds: [SQLValue])?)
}

/// One row of a resource, read by column name (a `Row`: its statement names its columns).
public typealias Record = Row

extension Row {
    /// The `id` column.
    public var id: Int64 { int("id") ?? 0 }
}

// MARK: Schema

extension Resource {
    /// The schema pieces the declaration implies: link tables, search postings, counters.
    public var schemaPieces: String { schemaPieces(linkForeignKeys: true) }

    /// `schemaPieces`; `linkForeignKeys` false for links whose targets are projections' copies.
    public func schemaPieces(linkForeignKeys: Bool) -> String {
        links.map { $0.schema(owner: table, targetForeignKey: linkForeignKeys) }.joined() + (search.map { NgramIndex.migrationSchema($0.grams) } ?? "") + (counters.map { Counters.schema($0) } ?? "")
            + (window?.dayCountSchema(owner: table) ?? "")
    }

    /// A migration's SQL adding each link's list column (`Link.listColumn`) to the table, filled
    /// from the link table in `position` order (an aggregate over an ordered subquery: SQLite
    /// does not flatten it, so the rows reach `json_group_array` in that order).
    public var linkListsSQL: String {
        links.map { link in
            """
            ALTER TABLE \(table) ADD COLUMN "\(link.listColumn)" TEXT NOT NULL DEFAULT '[]';
            UPDATE \(table) SET "\(link.listColumn)" = (SELECT json_group_array(\(link.targetColumn)) FROM
                (SELECT \(link.targetColumn) FROM \(link.table) WHERE \(link.ownerColumn) = \(table).id ORDER BY position));

            """
        }.joined()
    }

    /// Marks the posting table of builds before `SearchIndex` stale (call at start): this build
    /// no longer keeps it, so an older build started on the file later rebuilds it at its start
    /// instead of searching postings that miss every change made since. Its rows are left to
    /// that build (replicas of it still running during a rollout keep using them).
    public func retireSearchPostings(_ db: SQLiteConnection) throws {
        guard let search else { return }
        guard try db.queryOne("SELECT 1 FROM sqlite_master WHERE name = 'search_index_versions'") != nil else { return }
        try db.run("DELETE FROM search_index_versions WHERE name = ?", [.text(search.grams)])
    }

    /// At start: retires the old postings and builds the search index (`SearchIndex.prepare`),
    /// before the service says it is ready.
    public func prepareSearch(_ db: SQLiteConnection) throws {
        guard search != nil else { return }
        try retireSearchPostings(db)
        try searchIndex(db).prepare(db)
    }
}

// MARK: Reading

extension Resource {
    /// The search index of this resource's rows on `db`'s database.
    public func searchIndex(_ db: SQLiteConnection) -> SearchIndex {
        db.searchIndexes.index(table: table, eventType: event ?? "")
    }

    /// The row `id`, else 404 naming the id parameter.
    public func current(_ db: SQLiteConnection, _ id: Int64) throws -> Record {
        guard let row = try db.queryOne("SELECT \(selectList) FROM \(table) t WHERE t.id = ?", [.int(id)]) else {
            throw APIError.notFound("\(idParam) \(id) does not exist")
        }
        return row
    }

    /// Linked ids and names of many rows at once (one query per link, never one per row), each
    /// row's in its `position` order. The few links of one row are ordered here rather than by
    /// `ORDER BY owner, position`, which made SQLite build a sorter for every page.
    func linked(_ link: Link, of ids: [Int64], _ db: SQLiteConnection) throws -> [Int64: [(id: Int64, name: JSON)]] {
        guard !ids.isEmpty else { return [:] }
        var found: [Int64: [(position: Int64, id: Int64, name: JSON)]] = [:]
        for row in try db.query(Resource.linkSQL(link), [Resource.idArray(ids)]) {
            guard let owner = row.int(0), let linked = row.int(1) else { continue }
            found[owner, default: []].append((row.int(3) ?? 0, linked, row[2].json))
        }
        return found.mapValues { items in items.sorted { $0.position < $1.position }.map { (id: $0.id, name: $0.name) } }
    }

    /// The owner, linked id, name and position of the links of the rows whose ids are bound as
    /// one JSON array (`Resource.idArray`). The ids come from `json_each` as the outer loop
    /// (CROSS JOIN fixes the order) rather than an `IN (?, …)` list: one statement text whatever
    /// the count, and no temporary b-tree SQLite would build for the list.
    static func linkSQL(_ link: Link) -> String {
        "SELECT l.\(link.ownerColumn), l.\(link.targetColumn), \(link.nameSource.nameSQL), l.position FROM json_each(?) j "
            + "CROSS JOIN \(link.table) l ON l.\(link.ownerColumn) = j.value JOIN \(link.target) x ON x.id = l.\(link.targetColumn)"
    }

    /// Ids as one JSON array (`[1,2,3]`), the parameter of `linkSQL` and `ReadCache.Source.sql`.
    static func idArray(_ ids: some Collection<Int64>) -> SQLValue {
        var text = JSONText(capacity: 2 + ids.count * 8)
        text.openArray()
        for (i, id) in ids.enumerated() {
            if i > 0 { text.comma() }
            text.int(id)
        }
        text.closeArray()
        return .text(String(decoding: text.bytes(), as: UTF8.self))
    }

    /// The answer rows, in order, with their links and referenced names.
    func json(_ rows: [Row], _ db: SQLiteConnection) throws -> [JSON] {
        let ids = rows.compactMap { $0.int(0) }
        let linkedByLink = try links.map { try linked($0, of: ids, db) }
        var names: [String: [Int64: JSON]] = [:]
        for reference in references {
            let targets = Array(Set(rows.compactMap { $0.int(reference.column) }))
            guard !targets.isEmpty else { continue }
            var found: [Int64: JSON] = [:]
            for row in try db.query(reference.nameSource.sql, [Resource.idArray(targets)]) {
                found[row.int(0) ?? 0] = row[1].json
            }
            names[reference.column] = found
        }
        return rows.map { row in
            let id = row.int(0) ?? 0
            var o = JSONObject()
            o.reserveCapacity(columns.count + 2 * links.count + references.count)
            for (i, column) in columns.enumerated() {
                o.append(column.name, column.answer(row[i]))
                for reference in references where reference.column == column.name {
                    o.append(reference.nameKey, row.int(i).flatMap { names[column.name]?[$0] } ?? .null)
                }
                for (link, found) in zip(links, linkedByLink) where link.firstIDKey?.after == column.name {
                    o.append(link.firstIDKey?.key ?? "", found[id]?.first.map { .int($0.id) } ?? .null)
                }
            }
            for (link, found) in zip(links, linkedByLink) {
                let items = found[id] ?? []
                o.append(link.namesKey, .array(items.map(\.name)))
                o.append(link.idsKey, .array(items.map { .int($0.id) }))
            }
            return .object(o)
        }
    }

    /// The rows `query.rows` (`SELECT <pageSelectList> <tail>`) selects written as a JSON array into `out`: the
    /// same text as `json(_:_:)` serialized, without building the tree, a `Row` or a `String`
    /// per value (list pages are the hot path). Column values go from SQLite straight into the
    /// text; the parts that need the page's ids (referenced names, links) are looked up after
    /// the rows were stepped and placed at the cuts recorded while writing them.
    ///
    /// First `query.ids` (`SELECT t.id <tail>`), the same rows' ids in the same order (`ordering` ends with the
    /// id), from an index: when the connection keeps every one of those rows for the snapshot it
    /// sees (`SnapshotRows`), they are not read again.
    /// `ids`, when given, are those ids already (a search page's, newest first, when that is the
    /// resource's ordering), and no query is needed for them.
    func writeRows(_ query: PageQuery, ids: [Int64]? = nil, expectedRows: Int = 20, _ db: SQLiteConnection, into out: inout JSONText) throws {
        let binds = query.binds
        let plan = answerPlan
        let referenceCount = references.count
        let linkCount = links.count
        let columnCount = plan.columnKeyRanges.count
        var columnsText: JSONText
        var rowCount = 0
        /// Per row: where each of the plan's cuts ends, then where the row ends, in `columnsText`.
        var cuts: [Int] = []
        /// Per row: the value of each reference's column.
        var targets: [Int64?] = []
        /// Per link: the linked ids of every row, one after the other, and where each row's ids end.
        var linkIDs = [[Int64]](repeating: [], count: linkCount)
        var linkEnds = [[Int]](repeating: [], count: linkCount)
        let version = try SnapshotCounts.version(db)
        var kept: [SnapshotRows.Row]?
        if let version {
            var pageIDs = ids ?? []
            if ids == nil {
                pageIDs.reserveCapacity(32)
                try db.forEachRow(query.ids, binds) { row in pageIDs.append(row.int(0)) }
            }
            kept = db.snapshotRows.rows(rowShape, of: pageIDs, version: version)
        }
        if let kept {
            columnsText = JSONText(capacity: kept.reduce(0) { $0 + $1.text.count })
            cuts.reserveCapacity(kept.count * (plan.cutCount + 1))
            targets.reserveCapacity(kept.count * referenceCount)
            for l in 0..<linkCount {
                linkEnds[l].reserveCapacity(kept.count)
                linkIDs[l].reserveCapacity(kept.reduce(0) { $0 + $1.links[l].count })
            }
            for row in kept {
                rowCount += 1
                let start = columnsText.count
                columnsText.raw(row.text)
                for cut in row.cuts { cuts.append(start + cut) }
                cuts.append(columnsText.count)
                targets.append(contentsOf: row.targets)
                for l in 0..<linkCount {
                    linkIDs[l].append(contentsOf: row.links[l])
                    linkEnds[l].append(linkIDs[l].count)
                }
            }
        } else {
            columnsText = JSONText(capacity: plan.answerCapacity(rows: expectedRows))
            /// The rows read, to keep for the next page of this snapshot.
            var read: [(id: Int64, row: SnapshotRows.Row)] = []
            let cutsPerRow = plan.cutCount
            // Per column, read by index from flat arrays (no `Slot` copied, no reference counting per value).
            try plan.keys.withUnsafeBufferPointer { keys in
                try db.forEachRow(query.rows, binds) { row in
                    rowCount += 1
                    let start = columnsText.count
                    for i in 0..<columnCount {
                        columnsText.raw(UnsafeBufferPointer(rebasing: keys[plan.columnKeyRanges[i]]))
                        switch row[Int32(i)] {
                        case .null: columnsText.null()
                        case .int(let v): if plan.columnMoney[i] { Resource.writeMoney(v, into: &columnsText) } else { columnsText.int(v) }
                        case .double(let v): columnsText.double(v)
                        case .bytes(let v): columnsText.string(utf8: v)
                        }
                        if plan.columnCut[i] { cuts.append(columnsText.count) }
                    }
                    cuts.append(columnsText.count)
                    for column in plan.referenceColumns { targets.append(column.flatMap { row.exactInt(Int32($0)) }) }
                    for l in 0..<linkCount {
                        Resource.appendIDs(row[Int32(columnCount + l)], to: &linkIDs[l])
                        linkEnds[l].append(linkIDs[l].count)
                    }
                    guard version != nil else { return }
                    let rowLinks = (0..<linkCount).map { l in
                        Array(linkIDs[l][(linkEnds[l].count > 1 ? linkEnds[l][linkEnds[l].count - 2] : 0)...])
                    }
                    let text = columnsText.withBytes { Array(UnsafeBufferPointer(rebasing: $0[start...])) }
                    read.append((row.int(Int32(columnCount + linkCount)), SnapshotRows.Row(
                        text: text, cuts: cuts[(cuts.count - 1 - cutsPerRow)..<(cuts.count - 1)].map { $0 - start },
                        targets: Array(targets[(targets.count - referenceCount)...]), links: rowLinks)))
                }
            }
            if let version { db.snapshotRows.keep(rowShape, read, version: version) }
        }
        guard rowCount > 0 else {
            out.openArray()
            out.closeArray()
            return
        }
        // Referenced and linked names, written as JSON into `names` (once per occurrence).
        var names = JSONText(capacity: 1024)
        /// Each reference's name for each row, at `reference * rowCount + row` (nil: no id, or it
        /// names no row).
        var referenceNames = [Range<Int>?](repeating: nil, count: referenceCount * rowCount)
        var namedRows: [Int] = []
        var namedIDs: [Int64] = []
        namedRows.reserveCapacity(rowCount)
        namedIDs.reserveCapacity(rowCount)
        for r in 0..<referenceCount {
            namedRows.removeAll(keepingCapacity: true)
            namedIDs.removeAll(keepingCapacity: true)
            for row in 0..<rowCount {
                guard let target = targets[row * referenceCount + r] else { continue }
                namedRows.append(row)
                namedIDs.append(target)
            }
            for (k, name) in try Resource.names(plan.referenceSources[r], of: namedIDs, db, into: &names).enumerated() {
                referenceNames[r * rowCount + namedRows[k]] = name
            }
        }
        /// Every link's ids one link after the other (`allLinkIDs`), the name of each (nil: it
        /// names no row, and is left out as a join with the target would leave it out), and
        /// where each row's ids of each link end, at `link * rowCount + row`.
        var allLinkIDs: [Int64] = []
        var linkNames: [Range<Int>?] = []
        var linkItemEnds: [Int] = []
        if linkCount > 0 {
            let total = linkIDs.reduce(0) { $0 + $1.count }
            allLinkIDs.reserveCapacity(total)
            linkNames.reserveCapacity(total)
            linkItemEnds.reserveCapacity(linkCount * rowCount)
            for l in 0..<linkCount {
                let base = allLinkIDs.count
                allLinkIDs += linkIDs[l]
                linkNames += try Resource.names(plan.linkSources[l], of: linkIDs[l], db, into: &names)
                for end in linkEnds[l] { linkItemEnds.append(base + end) }
            }
        }
        /// A row's ids of a link, as indexes into `allLinkIDs` and `linkNames`.
        func items(_ link: Int, _ row: Int) -> Range<Int> {
            // A link's first row starts where the previous link's last row ended.
            let at = link * rowCount + row
            return (at == 0 ? 0 : linkItemEnds[at - 1])..<linkItemEnds[at]
        }
        let answerStart = out.count
        defer { plan.noteRows(rowCount, bytes: out.count - answerStart) }
        plan.keys.withUnsafeBufferPointer { keys in
            func key(_ range: Range<Int>) -> UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(rebasing: keys[range]) }
            out.openArray()
            var start = 0
            var c = 0
            for r in 0..<rowCount {
                if r > 0 { out.comma() }
                out.openObject()
                for cut in 0..<plan.cutCount {
                    let end = cuts[c]
                    c += 1
                    out.raw(columnsText, start..<end)
                    start = end
                    for i in (cut == 0 ? 0 : plan.cutReferenceEnds[cut - 1])..<plan.cutReferenceEnds[cut] {
                        let reference = plan.cutReferences[i]
                        out.raw(key(plan.referenceKeyRanges[reference]))
                        if let name = referenceNames[reference * rowCount + r] { out.raw(names, name) } else { out.null() }
                    }
                    for i in (cut == 0 ? 0 : plan.cutFirstIDLinkEnds[cut - 1])..<plan.cutFirstIDLinkEnds[cut] {
                        let link = plan.cutFirstIDLinks[i]
                        out.raw(key(plan.firstIDKeyRanges[link]))
                        if let first = items(link, r).first(where: { linkNames[$0] != nil }) { out.int(allLinkIDs[first]) } else { out.null() }
                    }
                }
                let end = cuts[c]
                c += 1
                out.raw(columnsText, start..<end)
                start = end
                for l in 0..<linkCount {
                    let rowItems = items(l, r)
                    out.raw(key(plan.linkNamesKeyRanges[l]))
                    out.openArray()
                    var first = true
                    for k in rowItems {
                        guard let name = linkNames[k] else { continue }
                        if !first { out.comma() }
                        first = false
                        out.raw(names, name)
                    }
                    out.closeArray()
                    out.raw(key(plan.linkIDsKeyRanges[l]))
                    out.openArray()
                    first = true
                    for k in rowItems where linkNames[k] != nil {
                        if !first { out.comma() }
                        first = false
                        out.int(allLinkIDs[k])
                    }
                    out.closeArray()
                }
                out.closeObject()
            }
            out.closeArray()
        }
    }

    /// Appends the ids of a link's list column (`[3,1]`, as `replaceLinks` writes it) to `ids`;
    /// anything else in the column (NULL, not a list of integers) adds what digits it holds.
    static func appendIDs(_ value: ColumnValues.Value, to ids: inout [Int64]) {
        guard case .bytes(let text) = value else { return }
        var current: Int64 = 0
        var digits = 0
        var negative = false
        for byte in text {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                current = current &* 10 &+ Int64(byte &- UInt8(ascii: "0"))
                digits += 1
            case UInt8(ascii: "-"):
                negative = true
            default:
                if digits > 0 { ids.append(negative ? 0 &- current : current) }
                current = 0
                digits = 0
                negative = false
            }
        }
        if digits > 0 { ids.append(negative ? 0 &- current : current) }
    }

    /// Each id's name from `source` (in the order of `ids`, which may repeat) written into
    /// `names`, as its range there (nil: the id names no row): from the connection's
    /// `ReadCache` where it has them, else read in this transaction.
    static func names(_ source: ReadCache.Source, of ids: [Int64], _ db: SQLiteConnection,
                      into names: inout JSONText) throws -> [Range<Int>?] {
        guard !ids.isEmpty else { return [] }
        let read = { (ids: [Int64]) throws -> [(id: Int64, name: [UInt8])] in
            var found: [(id: Int64, name: [UInt8])] = []
            try db.forEachRow(source.sql, [Resource.idArray(ids)]) { row in
                guard let id = row.exactInt(0) else { return }
                var text = JSONText(capacity: 32)
                Resource.write(row[1], into: &text)
                found.append((id, text.bytes()))
            }
            return found
        }
        if let cache = db.readCache, try cache.reports(source.table, db) {
            return try cache.names(source, of: ids, generation: db.readGeneration, into: &names, read: read)
        }
        var named: [Int64: [UInt8]] = [:]
        for (id, name) in try read(Array(Set(ids))) { named[id] = name }
        return ids.map { id in
            guard let bytes = named[id] else { return nil }
            let start = names.count
            names.raw(bytes)
            return start..<names.count
        }
    }

    /// `Params.moneyText(cents)` as a JSON string, written without making the `String` (the
    /// same characters: integer part, ".", a "0" when the remainder is below 10, the remainder).
    static func writeMoney(_ cents: Int64, into out: inout JSONText) {
        let fraction = cents % 100
        out.raw("\"")
        out.int(cents / 100)
        out.raw(fraction < 10 ? ".0" : ".")
        out.int(fraction)
        out.raw("\"")
    }

    /// A column value as `SQLValue.json` serializes it.
    static func write(_ value: ColumnValues.Value, into out: inout JSONText) {
        switch value {
        case .null: out.null()
        case .int(let v): out.int(v)
        case .double(let v): out.double(v)
        case .bytes(let v): out.string(utf8: v)
        }
    }

    /// `GET`: status (default, aliases, `all`), the declared filters, search, links; newest
    /// first; paged with `page_info.total` from the counters when the filters allow. Runs inside
    /// the caller's read transaction (a `Route.read` handler).
    public func list(_ ctx: RequestContext, _ db: SQLiteConnection) throws -> WireResponse {
        let params = ctx.params
        let statuses = try params.statusFilter(allowed: status.values, aliases: status.aliases, default: status.defaultFilter)
        var filter = SQLFilter()
        let paging = paged ? try params.paging() : nil
        var span: (start: String, end: String)?
        if let window {
            let given = try params.timeWindow(defaultSpanSeconds: window.spanSeconds)
            filter.add("t.\"\(window.column)\" BETWEEN ? AND ?", [.text(given.start), .text(given.end)])
            span = given
        }
        let folded = try search.flatMap { try params.string($0.param) }.flatMap { $0.isEmpty ? nil : NgramIndex.fold($0) }
        /// The one counter dimension the filters use (`sc:`/`so:` style key suffix), if countable.
        var counterSuffix: [(prefix: String, suffix: String)] = [("s:", "")]
        var countable = counters != nil && folded == nil && window == nil
        func narrow(_ prefix: String, _ id: Int64) {
            if counterSuffix.count == 1 && counterSuffix[0].prefix == "s:" { counterSuffix = [(prefix + ":", ":\(id)")] } else { countable = false }
        }
        if let creator, let id = try params.id(creator) {
            filter.add("t.\"\(creator)\" = ?", [.int(id)])
            narrow("sc", id)
        }
        for item in filters {
            switch item {
            case .id(let param, let column):
                if let id = try params.id(param) { filter.add("t.\"\(column)\" = ?", [.int(id)]); countable = false }
            case .text(let param, let column):
                if let text = try params.string(param), !text.isEmpty { filter.add("t.\"\(column)\" = ?", [.text(text)]); countable = false }
            case .custom(let condition):
                if let made = try condition(params, db) { filter.add(made.sql, made.binds); countable = false }
            }
        }
        for link in links {
            switch link.filter {
            case .one(let param)?:
                if let id = try params.id(param) {
                    filter.add("t.id IN (SELECT \(link.ownerColumn) FROM \(link.table) WHERE \(link.targetColumn) = ?)", [.int(id)])
                    if let prefix = link.counterPrefix { narrow(prefix, id) } else { countable = false }
                }
            case .any(let param)?:
                if let ids = try params.idArray(param), !ids.isEmpty {
                    filter.add("EXISTS (SELECT 1 FROM \(link.table) l WHERE l.\(link.ownerColumn) = t.id AND l.\(link.targetColumn) IN (\(SQLFilter.marks(ids.count))))",
                               ids.map { .int($0) })
                    countable = false
                }
            case nil:
                break
            }
        }
        let keys = countable ? counterSuffix : []
        // Only status and the window filter: the window's unit counts can answer the total.
        let dayCounted = folded == nil && filter.conditions.count == 1
            ? window.flatMap { w in w.dayCounts.flatMap { counts in span.map { (w, counts, $0) } } } : nil
        /// The page's rows (nil: none).
        let rows: PageQuery?
        /// Their ids in page order, when known without a query.
        var rowIDs: [Int64]?
        let total: Int64
        if let folded, let paging {
            let page = try searchIndex(db).searchPage(db, folded: folded, statuses: statuses, filter: filter, paging: paging)
            total = page.total
            rows = page.ids.isEmpty ? nil : pageQuery(tail: "FROM \(table) t WHERE t.id IN (\(SQLFilter.marks(page.ids.count))) ORDER BY \(ordering)",
                                                      binds: page.ids.map { .int($0) })
            // The index answers newest first: when that is the order, the page's ids are known.
            if ordering == "t.id DESC", zip(page.ids, page.ids.dropFirst()).allSatisfy({ $0 > $1 }) { rowIDs = page.ids }
        } else {
            let limit = paging.map { [SQLValue.int($0.count), .int($0.offset)] } ?? []
            var query: PageQuery
            if filter.conditions.isEmpty, statuses?.isEmpty != true, (statuses?.count ?? 0) <= Resource.plainListMaxStatuses {
                // (No statuses at all, `IN ()`, matches nothing: the general path keeps that.)
                query = plainLists[statuses?.count ?? 0][paging == nil ? 0 : 1]
                query.binds = statuses?.map { .int($0) } ?? []
            } else {
                if let statuses { filter.in("t.status", statuses) }
                let clause = filter.clause, paged = !limit.isEmpty
                query = filteredLists.query(clause: clause, paged: paged) {
                    PageQuery(table: table, selectList: pageSelectList, clause: clause, ordering: ordering, paged: paged, binds: [])
                }
                query.binds = filter.binds
            }
            if let counters, !keys.isEmpty {
                total = try (statuses ?? status.values).reduce(0) { sum, s in
                    try sum + keys.reduce(0) { try $0 + Counters.get(db, table: counters, key: $1.prefix + "\(s)" + $1.suffix) }
                }
            } else if paging != nil, case let (window, counts, span)? = dayCounted {
                let counted = statuses ?? status.values
                // (The statuses as values: interpolating an array describes it through reflection,
                // ~10,000 instructions per page.)
                let key = SnapshotCounts.key("window " + counts, [.text(span.start), .text(span.end)] + counted.map { .int($0) })
                total = try SnapshotCounts.count(db, key: key) { db in
                    try window.total(db, table: table, counts: counts, statuses: counted, start: span.start, end: span.end)
                }
            } else if paging != nil {
                let (sql, binds) = (query.count, query.binds)
                total = try SnapshotCounts.count(db, key: SnapshotCounts.key(sql, binds)) { db in try db.scalar(sql, binds) }
            } else {
                total = 0
            }
            query.binds += limit
            rows = query
        }
        // The rows the page will have: the search's ids, else what the total leaves of the page.
        let expectedRows = rows == nil ? 0 : rowIDs?.count ?? paging.map { Int(max(0, min($0.count, total - $0.offset))) } ?? 20
        return try Reply.ok(capacity: answerPlan.answerCapacity(rows: expectedRows), page: paging?.info(total: total)) { out in
            if let rows {
                try writeRows(rows, ids: rowIDs, expectedRows: expectedRows, db, into: &out)
            } else {
                out.openArray()
                out.closeArray()
            }
        }
    }
}

/// A list page's queries, on the same binds: its ids (`SELECT t.id <tail>`) and its rows
/// (`SELECT <pageSelectList> <tail>`) for `writeRows`; `count` counts what the page is taken
/// from (without its `LIMIT`).
struct PageQuery: Sendable {
    var ids: String
    var rows: String
    var count: String
    var binds: [SQLValue]

    init(ids: String, rows: String, count: String, binds: [SQLValue]) {
        self.ids = ids
        self.rows = rows
        self.count = count
        self.binds = binds
    }

    /// A list's queries: `table t`, filtered by `clause` (`WHERE …` or ""), in `ordering`,
    /// with `LIMIT ? OFFSET ?` when `paged`.
    init(table: String, selectList: String, clause: String, ordering: String, paged: Bool, binds: [SQLValue]) {
        let tail = "FROM \(table) t \(clause) ORDER BY \(ordering)" + (paged ? " LIMIT ? OFFSET ?" : "")
        self.init(ids: "SELECT t.id " + tail, rows: "SELECT \(selectList) " + tail, count: "SELECT COUNT(*) FROM \(table) t \(clause)", binds: binds)
    }
}

/// A resource's list queries by `WHERE` clause and kind, made on first use: building the three
/// texts around the select list cost a filtered page (a follow page by organization) ~7,500
/// instructions, and the same text objects let the statement cache's front compare by identity.
/// Bounded: the clause shapes are the filters' combinations, but `IN (?, …)` has one per count.
final class PageQueries: Sendable {
    static let capacity = 64
    private let made = Mutex<[String: PageQuery]>([:])

    func query(clause: String, paged: Bool, make: () -> PageQuery) -> PageQuery {
        let key = paged ? clause + "\u{1F}p" : clause
        if let known = made.withLock({ $0[key] }) { return known }
        let query = make()
        made.withLock { made in
            if made.count >= PageQueries.capacity { made.removeAll(keepingCapacity: true) }
            made[key] = query
        }
        return query
    }

    /// Queries kept (tests).
    var count: Int { made.withLock { $0.count } }
}

extension Resource {
    /// The page queries of `tail` (the SQL after the select list); `count` left empty.
    func pageQuery(tail: String, binds: [SQLValue]) -> PageQuery {
        PageQuery(ids: "SELECT t.id " + tail, rows: "SELECT \(pageSelectList) " + tail, count: "", binds: binds)
    }
}

// MARK: Writing

/// What a create or update writes: column values and link lists (absent: unchanged).
public struct Write: Sendable {
    public var values: [(column: String, value: SQLValue)]
    public var links: [String: [Int64]]
    /// The folded search text (`name_fold`) of `texts`, made before the transaction (the
    /// writer, which every write waits for, folds nothing); used only while the row's search
    /// texts are still these.
    public var folded: (texts: [String], fold: String)?
    public init(values: [(column: String, value: SQLValue)] = [], links: [String: [Int64]] = [:]) {
        self.values = values
        self.links = links
    }
    public func value(_ column: String) -> SQLValue? { values.last { $0.column == column }?.value }

    /// `folded`'s text when it is that of `texts`; else folded now.
    func folded(_ texts: [String], _ search: Search) -> String {
        if let folded, folded.texts == texts { return folded.fold }
        return search.fold(texts)
    }
}

extension Resource {
    /// The fields, required parameters and links a request sends (checked before the
    /// transaction). `create` decides which parameters are required.
    public func write(from params: Params, create: Bool) throws(APIError) -> Write {
        for name in (create ? required : []) + alwaysRequired where params.isCleared(name) || !params.has(name) {
            throw .badRequest("\(name) is required")
        }
        for name in required where params.isCleared(name) { throw .badRequest("\(name) is required") }
        var write = Write(values: try params.values(for: fields))
        if let search, create || search.texts.allSatisfy({ write.value($0) != nil }) {
            let texts = search.texts(of: write, current: nil)
            write.folded = (texts, search.fold(texts))
        }
        for link in links {
            guard let ids = try params.idArray(link.param) else {
                if create && link.nonEmpty { throw .badRequest("\(link.param) is required (an array of ids)") }
                continue
            }
            if link.nonEmpty && ids.isEmpty { throw .badRequest("\(link.param) must name at least one id") }
            write.links[link.param] = ids
        }
        return write
    }

    /// The creator a write may set: the caller, or anyone when the caller is an administrator.
    public func requestedCreator(_ params: Params, _ caller: Caller) throws(APIError) -> Int64? {
        guard let creator else { return nil }
        return try requestedEmployee(creator, params, caller)
    }

    /// The editor a write names (nil when not given); only administrators may name another employee.
    public func requestedEditor(_ params: Params, _ caller: Caller) throws(APIError) -> Int64? {
        guard let editor else { return nil }
        return try requestedEmployee(editor, params, caller)
    }

    func requestedEmployee(_ param: String, _ params: Params, _ caller: Caller) throws(APIError) -> Int64? {
        guard let given = try params.id(param) else { return nil }
        if given != caller.id && !caller.isAdmin { throw .forbidden("only administrators may set \(param) to another employee") }
        return given
    }

    /// The referenced and linked ids `write` names that are unknown or deleted here, as
    /// (parameter, id): what a service may wait for its copies to catch up on before refusing.
    public func missingReferences(_ db: SQLiteConnection, _ write: Write) throws -> [(param: String, id: Int64)] {
        var missing: [(param: String, id: Int64)] = []
        for (reference, sql) in zip(references, referenceExistsSQL) {
            guard case .int(let id)? = write.value(reference.column) else { continue }
            if try !db.exists(sql, [.int(id)]) {
                missing.append((fields.first { $0.column == reference.column }?.param ?? reference.column, id))
            }
        }
        for (link, sql) in zip(links, linkExistsSQL) {
            for id in write.links[link.param] ?? [] where try !db.exists(sql, [.int(id)]) {
                missing.append((link.param, id))
            }
        }
        return missing
    }

    /// Every referenced and linked id must name a row that is not deleted (400 naming the
    /// first that does not).
    public func checkLinks(_ db: SQLiteConnection, _ write: Write) throws {
        try checkReferences(db, write, mayWait: false)
    }

    func counterKeys(status: Int64, creator: Int64?, links linked: [String: [Int64]]) -> [String] {
        var keys = ["s:\(status)"]
        if let creator { keys.append("sc:\(status):\(creator)") }
        for link in links {
            guard let prefix = link.counterPrefix else { continue }
            keys += (linked[link.param] ?? []).map { "\(prefix):\(status):\($0)" }
        }
        return keys
    }

    func linkedIDs(_ db: SQLiteConnection, _ id: Int64) throws -> [String: [Int64]] {
        var result: [String: [Int64]] = [:]
        for link in links {
            result[link.param] = try db.query("SELECT \(link.targetColumn) FROM \(link.table) WHERE \(link.ownerColumn) = ? ORDER BY position", [.int(id)])
                .compactMap { $0.int(0) }
        }
        return result
    }

    public func replaceLinks(_ db: SQLiteConnection, _ id: Int64, _ write: Write) throws {
        for link in links where write.links[link.param] != nil {
            try db.run("DELETE FROM \(link.table) WHERE \(link.ownerColumn) = ?", [.int(id)])
        }
        try db.update(table, id: id, listColumns(write))
        try insertLinkRows(db, id, write)
    }

    /// The list column of each link `write` sends, with its ids (`idArray`).
    func listColumns(_ write: Write) -> [(column: String, value: SQLValue)] {
        links.compactMap { link in write.links[link.param].map { (link.listColumn, Resource.idArray($0)) } }
    }

    /// The link-table rows of the links `write` sends (the list columns are the caller's).
    func insertLinkRows(_ db: SQLiteConnection, _ id: Int64, _ write: Write) throws {
        for (link, sql) in zip(links, linkInsertSQL) {
            guard let ids = write.links[link.param] else { continue }
            for (position, target) in ids.enumerated() {
                try db.run(sql, [.int(id), .int(target), .int(Int64(position))])
            }
        }
    }

    /// Inserts a row with `write`, the initial status, the creator and both times; keeps the
    /// links and counters; publishes the event (which the search index follows). Answers the new id.
    @discardableResult
    public func insert(_ db: SQLiteConnection, _ write: Write, creator creatorID: Int64?) throws -> Int64 {
        let now = Timestamp.now()
        var values = write.values
        if let creator, let creatorID { values.append((creator, .int(creatorID))) }
        values += [("createTime", .text(now)), ("updateTime", .text(now)), ("status", .int(status.initial))]
        let texts = search.map { $0.texts(of: write, current: nil) } ?? []
        if let search { values.append(("name_fold", .text(write.folded(texts, search)))) }
        values += listColumns(write)
        let id = try db.insert(table, values)
        // A new id was never used (AUTOINCREMENT): no link rows to delete first.
        try insertLinkRows(db, id, write)
        if let counters {
            try Counters.add(db, table: counters, keys: counterKeys(status: status.initial, creator: creatorID, links: write.links), delta: 1)
        }
        try publish(db, id)
        return id
    }

    /// Updates the fields `write` sends (and `updateTime`, `name_fold`), its links, counters; publishes.
    public func update(_ db: SQLiteConnection, _ current: Record, _ write: Write, creator creatorID: Int64? = nil) throws {
        let id = current.id
        var changes = write.values
        if let creator, let creatorID { changes.append((creator, .int(creatorID))) }
        if let search {
            let before = search.texts.map { current.string($0) ?? "" }
            let after = search.texts(of: write, current: current)
            if before != after { changes.append(("name_fold", .text(write.folded(after, search)))) }
        }
        changes.append(("updateTime", .text(Timestamp.now())))
        let oldLinks = counters != nil ? try linkedIDs(db, id) : [:]
        try db.update(table, id: id, changes)
        try replaceLinks(db, id, write)
        if let counters {
            let rowStatus = current.int("status") ?? status.initial
            let oldCreator = creator.flatMap { current.int($0) }
            var newLinks = oldLinks
            for (param, ids) in write.links { newLinks[param] = ids }
            try Counters.move(db, table: counters, from: counterKeys(status: rowStatus, creator: oldCreator, links: oldLinks),
                              to: counterKeys(status: rowStatus, creator: creatorID ?? oldCreator, links: newLinks))
        }
        try publish(db, id)
    }

    /// Sets the row's status (and `updateTime`); moves counters; publishes.
    public func changeStatus(_ db: SQLiteConnection, _ current: Record, to newStatus: Int64) throws {
        let id = current.id
        try db.run("UPDATE \(table) SET status = ?, updateTime = ? WHERE id = ?", [.int(newStatus), .text(Timestamp.now()), .int(id)])
        if let counters {
            let linked = try linkedIDs(db, id)
            let rowCreator = creator.flatMap { current.int($0) }
            try Counters.move(db, table: counters, from: counterKeys(status: current.int("status") ?? status.initial, creator: rowCreator, links: linked),
                              to: counterKeys(status: newStatus, creator: rowCreator, links: linked))
        }
        try publish(db, id)
    }

    /// Appends the row's published columns to the outbox (nothing without an event type).
    public func publish(_ db: SQLiteConnection, _ id: Int64) throws {
        guard let event else { return }
        let plan = publishPlan
        var state = JSONText(capacity: 512)
        var found = false
        try db.forEachRow(plan.select, [.int(id)]) { row in
            found = true
            state.openObject()
            for (i, key) in plan.columnKeys.enumerated() {
                if i > 0 { state.comma() }
                state.raw(key)
                Resource.write(row[Int32(i)], into: &state)
            }
            // The ids in `position` order, from the row's list column (kept with the link rows).
            var ids: [Int64] = []
            for (l, key) in plan.linkKeys.enumerated() {
                if l > 0 || !plan.columnKeys.isEmpty { state.comma() }
                state.raw(key)
                ids.removeAll(keepingCapacity: true)
                Resource.appendIDs(row[Int32(plan.columnKeys.count + l)], to: &ids)
                state.openArray()
                for (k, linked) in ids.enumerated() {
                    if k > 0 { state.comma() }
                    state.int(linked)
                }
                state.closeArray()
            }
            state.closeObject()
        }
        guard found else { return }
        try Outbox.append(db, type: event, entityID: id, stateText: String(decoding: state.bytes(), as: UTF8.self))
    }
}

/// A resource's published state (its event's `state`): one select of the published columns and
/// the published links' list columns, written straight as JSON text with keys encoded once.
struct PublishPlan: Sendable {
    let select: String
    /// `"column":` per published column, then `"idsKey":` per published link.
    let columnKeys: [[UInt8]]
    let linkKeys: [[UInt8]]

    init(table: String, columns: [Column], links: [Link]) {
        let names = columns.filter(\.published).map(\.name)
        let published = links.filter(\.published)
        let selected = names.map { "\"\($0)\"" } + published.map { "\"\($0.listColumn)\"" }
        select = "SELECT \(selected.isEmpty ? "1" : selected.joined(separator: ", ")) FROM \(table) WHERE id = ?"
        columnKeys = names.map(JSONText.key)
        linkKeys = published.map { JSONText.key($0.idsKey) }
    }
}

// MARK: Standard handlers

/// A resource's own rules around the standard handlers.
public struct ResourceHooks: Sendable {
    /// In the write transaction, before a create (`current` nil) or an update is written: e.g.
    /// a unique name (409) or a reference that must exist.
    public var beforeWrite: @Sendable (SQLiteConnection, _ current: Record?, _ write: Write) throws -> Void
    /// In the transaction, before a status change.
    public var beforeStatus: @Sendable (SQLiteConnection, _ current: Record, _ status: Int64) throws -> Void
    /// In the write transaction, after `beforeWrite`: column values the service derives rather
    /// than reads from parameters (a column copied from a referenced row, the caller as the
    /// row's operator), added to what is written.
    public var derive: @Sendable (SQLiteConnection, _ current: Record?, _ write: Write) throws -> [(column: String, value: SQLValue)]

    public init(beforeWrite: @escaping @Sendable (SQLiteConnection, Record?, Write) throws -> Void = { _, _, _ in },
                beforeStatus: @escaping @Sendable (SQLiteConnection, Record, Int64) throws -> Void = { _, _, _ in },
                derive: @escaping @Sendable (SQLiteConnection, Record?, Write) throws -> [(column: String, value: SQLValue)] = { _, _, _ in [] }) {
        self.beforeWrite = beforeWrite
        self.beforeStatus = beforeStatus
        self.derive = derive
    }
}

extension Resource {
    /// The three routes of a resource: list, save (create or update), status change.
    /// `saveMessage` answers creates and updates; `statusMessages` a status change to the
    /// given status (others: 操作成功).
    public func routes(list: String, save: String, setStatus: String, hooks: ResourceHooks = ResourceHooks(),
                       saveMessage: String = Reply.mutationMessage, statusMessages: [Int64: String] = [:]) -> [Route] {
        [
            .read(list) { try self.list($0, $1) },
            .direct("POST", save) { self.save($0, hooks: hooks, message: saveMessage, then: $1) },
            .direct("POST", setStatus) { self.setStatus($0, hooks: hooks, messages: statusMessages, then: $1) },
        ]
    }

    /// The id parameter (or its alias) of an update or status change; nil when neither is sent.
    public func requestedID(_ params: Params) throws(APIError) -> Int64? {
        if let id = try params.id(idParam) { return id }
        guard let idAlias else { return nil }
        return try params.id(idAlias)
    }

    /// `POST`: creates a row, or updates the fields sent when the id parameter is given.
    /// Parameters are checked on the caller's thread (the service's loop), then the write runs
    /// and `done` gets its answer on the writer's queue (`Route.direct`).
    public func save(_ ctx: RequestContext, hooks: ResourceHooks = ResourceHooks(), message: String = Reply.mutationMessage,
                     then done: @escaping @Sendable (Result<WireResponse, Error>) -> Void) {
        let caller: Caller, id: Int64?, creatorID: Int64?, written: Write
        do {
            caller = try ctx.requireCaller()
            id = try requestedID(ctx.params)
            var write = try write(from: ctx.params, create: id == nil)
            creatorID = try requestedCreator(ctx.params, caller)
            if let editor, let editorID = try requestedEditor(ctx.params, caller) ?? (id == nil ? nil : caller.id) {
                write.values.append((editor, .int(editorID)))
            }
            written = write
        } catch {
            return done(.failure(error))
        }
        writeAwaitingReferences(ctx, written, then: done) { [self] mayWait in { [self] db in
            try checkReferences(db, written, mayWait: mayWait)
            guard let id else {
                try hooks.beforeWrite(db, nil, written)
                var derived = written
                derived.values += try hooks.derive(db, nil, written)
                return Reply.mutation(id: try insert(db, derived, creator: creatorID ?? (creator == nil ? nil : caller.id)), message: message)
            }
            let current = try current(db, id)
            if updatesByCreator, let creator, !caller.isAdmin, current.int(creator) != caller.id {
                throw APIError.forbidden("only administrators may change rows others created")
            }
            try hooks.beforeWrite(db, current, written)
            var derived = written
            derived.values += try hooks.derive(db, current, written)
            try update(db, current, derived, creator: creatorID)
            return Reply.mutation(id: id, message: message)
        } }
    }

    /// The status-change endpoint: the id parameter, `status` (required unless the rule has a
    /// default); with a creator rule, employees change only rows they created. `done` gets the
    /// answer on the writer's queue, as for `save`.
    public func setStatus(_ ctx: RequestContext, hooks: ResourceHooks = ResourceHooks(), messages: [Int64: String] = [:],
                          then done: @escaping @Sendable (Result<WireResponse, Error>) -> Void) {
        let caller: Caller, id: Int64, newStatus: Int64
        do {
            caller = try ctx.requireCaller()
            guard let requested = try requestedID(ctx.params) else { throw APIError.badRequest("\(idParam) is required") }
            guard let status = try ctx.params.int("status", oneOf: status.values) ?? status.changeDefault else {
                throw APIError.badRequest("status is required")
            }
            (id, newStatus) = (requested, status)
        } catch {
            return done(.failure(error))
        }
        ctx.mutate({ [self] db in
            let current = try current(db, id)
            if let creator { try caller.requireMayChangeRow(createdBy: current.int(creator)) }
            try hooks.beforeStatus(db, current, newStatus)
            try changeStatus(db, current, to: newStatus)
            return Reply.mutation(id: id, message: messages[newStatus] ?? Reply.mutationMessage)
        }, completion: done)
    }

    /// `setStatus` for a task (a handler with rules of its own: employees).
    public func setStatus(_ ctx: RequestContext, hooks: ResourceHooks = ResourceHooks(), messages: [Int64: String] = [:]) async throws -> WireResponse {
        try await withCheckedThrowingContinuation { continuation in setStatus(ctx, hooks: hooks, messages: messages) { continuation.resume(with: $0) } }
    }
}

/// Where each part of a list row goes when it is written as JSON text (`Resource.writeRows`):
/// keys encoded once, with the comma before every key but the first, all in one array (`keys`,
/// indexed by the ranges below); what is answered after a column (a cut) as flat index lists.
/// Flat arrays of plain values and one object: a page reads them per row and value without
/// retaining an array each time (nested arrays and a struct of arrays cost a follow page
/// hundreds of retains and releases).
final class AnswerPlan: Sendable {
    let keys: [UInt8]
    /// About how many bytes a row of the last page took in the answer (its columns, names and
    /// links): the next page's buffers are sized from it, instead of starting small and being
    /// copied each time they double (a 20-row customer page is ~30 KB; growing to it copied
    /// ~70 KB, 5 % of CustomerService's time per search page).
    let rowBytes = Atomic<Int>(256)

    /// The answer's capacity for a page of `rows` rows and its envelope; at most 1 MiB up front
    /// (a larger answer grows as before).
    func answerCapacity(rows: Int) -> Int { min(1024 + rows * rowBytes.load(ordering: .relaxed), 1 << 20) }

    /// Remembers what `rows` rows took: a page larger than the hint raises it (with a sixteenth
    /// to spare), one smaller by more than an eighth lowers it; pages in between store nothing,
    /// so readers on several threads do not keep writing the same word.
    func noteRows(_ rows: Int, bytes: Int) {
        guard rows > 0 else { return }
        let perRow = bytes / rows + 1
        let known = rowBytes.load(ordering: .relaxed)
        if perRow > known || perRow < known - known / 8 { rowBytes.store(perRow + perRow / 16, ordering: .relaxed) }
    }
    /// Per column: its key in `keys`, whether it is money, whether it has a cut.
    let columnKeyRanges: [Range<Int>]
    let columnMoney: [Bool]
    let columnCut: [Bool]
    /// How many columns have a cut.
    let cutCount: Int
    /// Per cut `c` (in column order), the references answered there (indexes into the
    /// references): `cutReferences[(c == 0 ? 0 : cutReferenceEnds[c - 1])..<cutReferenceEnds[c]]`.
    let cutReferences: [Int]
    let cutReferenceEnds: [Int]
    /// Per cut, likewise, the links whose first id is answered there.
    let cutFirstIDLinks: [Int]
    let cutFirstIDLinkEnds: [Int]
    /// Per reference: its name's key; the row position of its column (nil when no column has
    /// its name); where its names come from.
    let referenceKeyRanges: [Range<Int>]
    let referenceColumns: [Int?]
    let referenceSources: [ReadCache.Source]
    /// Per link: the keys of its first id, its names and its ids; where its names come from.
    let firstIDKeyRanges: [Range<Int>]
    let linkNamesKeyRanges: [Range<Int>]
    let linkIDsKeyRanges: [Range<Int>]
    let linkSources: [ReadCache.Source]

    init(columns: [Column], references: [Reference], links: [Link]) {
        var keys: [UInt8] = []
        func key(_ name: String, first: Bool = false) -> Range<Int> {
            let start = keys.count
            if !first { keys.append(UInt8(ascii: ",")) }
            keys += JSONText.key(name)
            return start..<keys.count
        }
        var columnKeyRanges: [Range<Int>] = [], columnMoney: [Bool] = [], columnCut: [Bool] = []
        var cutReferences: [Int] = [], cutReferenceEnds: [Int] = [], cutFirstIDLinks: [Int] = [], cutFirstIDLinkEnds: [Int] = []
        for (i, column) in columns.enumerated() {
            columnKeyRanges.append(key(column.name, first: i == 0))
            if case .money = column.format { columnMoney.append(true) } else { columnMoney.append(false) }
            let answered = references.indices.filter { references[$0].column == column.name }
            let firstIDs = links.indices.filter { links[$0].firstIDKey?.after == column.name }
            let cut = !answered.isEmpty || !firstIDs.isEmpty
            columnCut.append(cut)
            guard cut else { continue }
            cutReferences += answered
            cutReferenceEnds.append(cutReferences.count)
            cutFirstIDLinks += firstIDs
            cutFirstIDLinkEnds.append(cutFirstIDLinks.count)
        }
        self.columnKeyRanges = columnKeyRanges
        self.columnMoney = columnMoney
        self.columnCut = columnCut
        cutCount = cutReferenceEnds.count
        self.cutReferences = cutReferences
        self.cutReferenceEnds = cutReferenceEnds
        self.cutFirstIDLinks = cutFirstIDLinks
        self.cutFirstIDLinkEnds = cutFirstIDLinkEnds
        referenceKeyRanges = references.map { key($0.nameKey) }
        referenceColumns = references.map { reference in columns.firstIndex { $0.name == reference.column } }
        referenceSources = references.map(\.nameSource)
        firstIDKeyRanges = links.map { key($0.firstIDKey?.key ?? "") }
        linkNamesKeyRanges = links.map { key($0.namesKey) }
        linkIDsKeyRanges = links.map { key($0.idsKey) }
        linkSources = links.map(\.nameSource)
        self.keys = keys
    }
}
