import ServiceKit

/// users.sqlite: groups, employees, sessions, login failures, menus.
enum UserSchema {
    static let migrations = [
        Migration(name: "001-groups-employees-sessions-menus", sql: """
        CREATE TABLE groups (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            groupName TEXT NOT NULL,
            groupDetail TEXT,
            createTime TEXT NOT NULL,
            updateTime TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX groups_status ON groups(status, id);
        CREATE TABLE employees (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            number,
            nickName TEXT,
            realName TEXT,
            headImageUrl TEXT,
            phoneNumber TEXT NOT NULL,
            sex INTEGER NOT NULL DEFAULT 3,
            roleId INTEGER NOT NULL DEFAULT 2,
            openId,
            birthday TEXT,
            title,
            address TEXT,
            school TEXT,
            politicalAffiliation TEXT,
            education TEXT,
            rankId INTEGER NOT NULL DEFAULT 0,
            rankType INTEGER NOT NULL DEFAULT 0,
            departmentId INTEGER NOT NULL DEFAULT 0,
            jobId INTEGER NOT NULL DEFAULT 0,
            info TEXT,
            entryTime TEXT,
            officialTime TEXT,
            resignTime TEXT,
            lastLoginTime TEXT,
            isLogin INTEGER NOT NULL DEFAULT 0,
            createTime TEXT NOT NULL,
            updateTime TEXT NOT NULL,
            status INTEGER NOT NULL DEFAULT 1,
            note TEXT,
            password_hash TEXT NOT NULL
        );
        CREATE UNIQUE INDEX employees_phone_live ON employees(phoneNumber) WHERE status <> -1;
        CREATE INDEX employees_status ON employees(status, id);
        CREATE TABLE sessions (
            token_hash BLOB PRIMARY KEY,
            employee_id INTEGER NOT NULL REFERENCES employees(id),
            created_at INTEGER NOT NULL,
            last_seen INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX sessions_employee ON sessions(employee_id);
        CREATE TABLE login_failures (
            phone TEXT NOT NULL,
            at INTEGER NOT NULL
        );
        CREATE INDEX login_failures_phone ON login_failures(phone, at);
        CREATE TABLE menus (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            content TEXT,
            note TEXT,
            status INTEGER NOT NULL DEFAULT 1
        );
        CREATE TABLE employee_menus (
            employee_id INTEGER NOT NULL REFERENCES employees(id),
            menu_id INTEGER NOT NULL REFERENCES menus(id),
            position INTEGER NOT NULL,
            PRIMARY KEY (employee_id, menu_id)
        ) WITHOUT ROWID;
        """
        + Employees.resource.schemaPieces),
        // A failed-login attempt is recorded once per request id, so a resend is not counted twice.
        Migration(name: "002-login-failures-request-id", sql: """
        ALTER TABLE login_failures ADD COLUMN request_id TEXT;
        CREATE UNIQUE INDEX login_failures_request ON login_failures(request_id) WHERE request_id IS NOT NULL;
        """),
    ]
}
