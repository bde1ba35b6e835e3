-- Agent store, version 1.
-- Only what sync and ordering need is in clear: ids, kinds, stamps,
-- sequence numbers and sync state. Every record and change body is sealed
-- with the data key (XChaCha20-Poly1305) before it reaches SQL.

-- Small settings and counters: device_id, last_seq, acked_seq, hlc, created_at.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- The data key wrapped once per secret (passphrase, recovery code).
CREATE TABLE keyslots (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('passphrase', 'recovery')),
    salt       BLOB NOT NULL,
    kdf_time   INTEGER NOT NULL,
    kdf_memory INTEGER NOT NULL,
    kdf_threads INTEGER NOT NULL,
    wrapped    BLOB NOT NULL,
    created_at TEXT NOT NULL
);

-- Current merged state of each record. body = seal(CBOR merge state),
-- bound to ('records', kind, id).
CREATE TABLE records (
    id      BLOB PRIMARY KEY CHECK (length(id) = 16),
    kind    TEXT NOT NULL,
    hlc     INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    erased  INTEGER NOT NULL DEFAULT 0,
    body    BLOB NOT NULL
) WITHOUT ROWID;

-- The change log: one row per write, seq without gaps. Rows above
-- meta.acked_seq are the outbox. body = seal(CBOR fields), bound to
-- ('changes', kind, record_id, seq).
CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY,
    hlc       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    record_id BLOB NOT NULL,
    op        INTEGER NOT NULL,
    body      BLOB NOT NULL
);
