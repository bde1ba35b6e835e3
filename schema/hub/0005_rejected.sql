-- Hub store, version 5: changes the hub refused (docs/PROTOCOL.md, "A
-- change the hub refuses"). A refused change counts in its device's
-- high-water mark, so that it never blocks the outbox behind it, but it is
-- neither merged, logged nor forwarded to the team. What is kept
-- identifies it (the divergence checks compare its tag) and says why; it
-- holds no record value.
CREATE TABLE rejected (
    device    INTEGER NOT NULL REFERENCES devices(num),
    dseq      INTEGER NOT NULL,
    hlc       INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    record_id BLOB NOT NULL,
    op        INTEGER NOT NULL,
    code      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    at        INTEGER NOT NULL, -- Unix ms
    PRIMARY KEY (device, dseq)
) WITHOUT ROWID;
