-- Agent store, version 2: the hub this device is enrolled with.
-- One row at most. The device key (full sessions: push and pull) is
-- sealed with the data key; the push key is in clear so that pending
-- changes can leave while the agent is locked (docs/SECURITY.md).
CREATE TABLE hub (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    url              TEXT NOT NULL,
    cert_fingerprint BLOB NOT NULL,
    hub_key          BLOB,
    device_name      TEXT NOT NULL,
    team             TEXT NOT NULL,
    device_key       BLOB NOT NULL,
    push_key         BLOB NOT NULL,
    enrolled_at      TEXT NOT NULL
);

-- Outbox bodies sealed to the hub's X25519 key at write time (besides the
-- copy under the data key), so that a locked agent can push them.
CREATE TABLE envkeys (
    id  INTEGER PRIMARY KEY,
    epk BLOB NOT NULL
);
ALTER TABLE changes ADD COLUMN hub_body BLOB;
ALTER TABLE changes ADD COLUMN hub_key INTEGER REFERENCES envkeys(id);
