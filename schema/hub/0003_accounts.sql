-- Hub store, version 3: the coordinators' dashboard accounts (issue #6).
-- Times are Unix milliseconds (UTC); NULL means "never".

-- Dashboard users. password is the PHC string of an Argon2id hash, its
-- parameters included ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so that
-- raising the cost later keeps older hashes verifiable. territories:
-- the codes a coordinator may see (département, EPCI SIREN, commune
-- INSEE), separated by spaces; empty for an admin.
CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'coordinator', 'viewer')),
    password    TEXT NOT NULL,
    territories TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    disabled_at INTEGER
);

-- Logged-in browsers. Only the SHA-256 of the cookie's token is kept: a
-- copy of the file gives no usable session. csrf is the token every
-- form of the session carries.
CREATE TABLE sessions (
    token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);

-- Bearer tokens for the read-only JSON API, hashed like sessions.
CREATE TABLE api_tokens (
    token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
) WITHOUT ROWID;

-- Who saw or changed what, when: logins (failures included), admin
-- actions, accesses to personal data. email is as typed for a failed
-- login. Kept one year (docs: retention).
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    user_id INTEGER,
    email   TEXT NOT NULL DEFAULT '',
    action  TEXT NOT NULL,
    what    TEXT NOT NULL DEFAULT '',
    ip      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit(at);
