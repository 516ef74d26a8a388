import ServiceKit

/// customers.sqlite: organizations, customers, their links, search grams and counters.
enum CustomerSchema {
    static let migrations = [
        Migration(name: "001-organizations-customers-grams-counters", sql: """
        CREATE TABLE organizations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            groupName TEXT NOT NULL,
            groupDetail TEXT,
            type,
            provience TEXT,
            city TEXT,
            county TEXT,
            address TEXT,
            legal_person TEXT,
            register_capital TEXT,
            registerDate TEXT,
            website TEXT,
            creator_id INTEGER,
            createTime TEXT NOT NULL,
            updateTime TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 1,
            note TEXT,
            name_fold TEXT NOT NULL
        );
        CREATE INDEX organizations_status ON organizations(status, id);
        CREATE INDEX organizations_creator ON organizations(creator_id, status, id);
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            type,
            nickName TEXT,
            realName TEXT NOT NULL,
            avatar TEXT,
            phoneNumber TEXT,
            job,
            sex INTEGER NOT NULL DEFAULT 3,
            cid TEXT,
            openId TEXT,
            level NOT NULL DEFAULT 0,
            isVip INTEGER NOT NULL DEFAULT 0,
            isSenior INTEGER NOT NULL DEFAULT 0,
            vipDueTime TEXT,
            navigationDueTime TEXT,
            createTime TEXT NOT NULL,
            updateTime TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 1,
            note TEXT,
            legal_person TEXT,
            register_capital TEXT,
            registerDate TEXT,
            website TEXT,
            creator_id INTEGER,
            name_fold TEXT NOT NULL
        );
        CREATE INDEX customers_status ON customers(status, id);
        CREATE INDEX customers_creator ON customers(creator_id, status, id);
        CREATE INDEX customers_phone ON customers(phoneNumber, status, id);
        """
        + Organizations.resource.schemaPieces
        + Customers.resource.schemaPieces),
    ]
}
