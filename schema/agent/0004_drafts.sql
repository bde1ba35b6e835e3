-- Agent store, version 4: forms kept when the agent locked before they
-- were saved (docs/SECURITY.md, "Drafts"). A locked agent has no data key,
-- so a draft is sealed to the store's own X25519 public key (meta
-- draft_pub, in clear), whose private key is sealed under the data key
-- (meta draft_key): it is written while locked, read only after an
-- unlock, and deleted once taken back.
CREATE TABLE drafts (
    id         INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,   -- RFC 3339
    form       TEXT NOT NULL,   -- the form's address, e.g. /activites/nouvelle (no personal data)
    epk        BLOB NOT NULL,   -- ephemeral X25519 public key of the envelope
    body       BLOB NOT NULL    -- sealed JSON of the form's fields
);
