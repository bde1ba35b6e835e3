-- Agent store, version 3: changes the hub refused (docs/PROTOCOL.md, "A
-- change the hub refuses"). They stay in the change log, acknowledged
-- (the hub counted them so the rest of the outbox goes on); this says
-- which and why, for `agent status` and the UI. No record value here: the
-- reason names fields, never their contents.
CREATE TABLE rejected (
    seq      INTEGER PRIMARY KEY, -- changes.seq
    code     TEXT NOT NULL,       -- invalid, clock_ahead
    reason   TEXT NOT NULL,
    ahead_ms INTEGER NOT NULL DEFAULT 0,
    at       TEXT NOT NULL        -- RFC 3339, when the hub refused it
);
