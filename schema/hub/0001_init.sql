-- Hub store, version 1.
-- The hub keeps the merged state of every record and its own change log,
-- in clear: it is the consolidation point (docs/SECURITY.md). Times are
-- Unix milliseconds (UTC); NULL means "never". Device ids, record ids,
-- kinds, teams and stamps are what the sync filters and orders on.

-- Enrolled devices. num is a compact internal key used by records and
-- changes instead of repeating the 36-character device id in every row.
CREATE TABLE devices (
    num              INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL UNIQUE,
    team             TEXT NOT NULL,
    device_key       BLOB NOT NULL,
    push_key         BLOB NOT NULL,
    enrolled_at      INTEGER NOT NULL,
    revoked_at       INTEGER,
    last_seen        INTEGER,
    last_sync        INTEGER,
    hwm              INTEGER NOT NULL DEFAULT 0,
    agent_version    TEXT NOT NULL DEFAULT '',
    clock_offset_ms  INTEGER NOT NULL DEFAULT 0,
    bytes_received   INTEGER NOT NULL DEFAULT 0,
    changes_received INTEGER NOT NULL DEFAULT 0
);

-- Single-use enrollment tokens; only their SHA-256 is kept.
CREATE TABLE enrollments (
    token_hash BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    name       TEXT NOT NULL,
    team       TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    TEXT -- device id that consumed the token
) WITHOUT ROWID;

-- Merged state of each record: state = merge.State.Marshal(). team is the
-- team of the device that first sent the record, origin that device.
CREATE TABLE records (
    id      BLOB PRIMARY KEY CHECK (length(id) = 16),
    kind    TEXT NOT NULL,
    team    TEXT NOT NULL,
    origin  INTEGER NOT NULL REFERENCES devices(num),
    hlc     INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    erased  INTEGER NOT NULL DEFAULT 0,
    state   BLOB NOT NULL
) WITHOUT ROWID;

-- The hub's change log, in hub order (hseq), that agents pull from.
-- device/dseq: the device that made the change and its sequence number;
-- fields = CBOR of the change's field map (personal fields scrubbed once
-- the record is erased). Rows are never deleted, so hseq only grows.
CREATE TABLE changes (
    hseq      INTEGER PRIMARY KEY,
    team      TEXT NOT NULL,
    device    INTEGER NOT NULL REFERENCES devices(num),
    dseq      INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    record_id BLOB NOT NULL,
    op        INTEGER NOT NULL,
    hlc       INTEGER NOT NULL,
    fields    BLOB NOT NULL
);
-- Pulls: a team's changes after a cursor.
CREATE INDEX changes_team_hseq ON changes(team, hseq);
-- Erasure: every logged change of one record.
CREATE INDEX changes_record ON changes(record_id);
