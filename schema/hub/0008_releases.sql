-- Hub store, version 8: agent releases (issue #14, hub/releases). The
-- hub never signs: each release carries the signature the operator's
-- offline release key made over its manifest.
-- The hub's release key: recorded with the first release, the one agents
-- pin at enrollment; a release signed with another key is refused.
CREATE TABLE release_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    public_key BLOB NOT NULL,   -- Ed25519, 32 bytes
    added_at   INTEGER NOT NULL -- Unix ms
);
CREATE TABLE releases (
    id        INTEGER PRIMARY KEY,
    version   TEXT NOT NULL,
    os        TEXT NOT NULL,
    arch      TEXT NOT NULL,
    size      INTEGER NOT NULL,
    sha256    BLOB NOT NULL,
    signature BLOB NOT NULL,   -- Ed25519 over internal/release's Manifest.Message
    added_at  INTEGER NOT NULL, -- Unix ms
    UNIQUE (os, arch, version)
);
-- The binary in pieces of 64 KiB (hub/releases.ChunkSize): a download, or
-- the rest of one, reads one piece at a time.
CREATE TABLE release_chunks (
    release_id INTEGER NOT NULL REFERENCES releases(id),
    n          INTEGER NOT NULL, -- from 0
    data       BLOB NOT NULL,
    PRIMARY KEY (release_id, n)
);
