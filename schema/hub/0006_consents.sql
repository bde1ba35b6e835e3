-- Hub store, version 6: whose consent each consent record is (issue #10).
-- The hub refuses identifying data, and assessments, pushed for a person
-- without an active consent (docs/PROTOCOL.md, "A change the hub
-- refuses"): each batch looks up the consents of the persons it touches.
-- A consent's person is inside records.state (CBOR), which no query can
-- read; this table holds it, written with the record by every batch that
-- merges a consent. The consent itself is read back from records.
CREATE TABLE consent_subjects (
    id          BLOB PRIMARY KEY CHECK (length(id) = 16), -- the consent record
    team        TEXT NOT NULL,
    beneficiary BLOB NOT NULL CHECK (length(beneficiary) = 16)
) WITHOUT ROWID;
-- A batch's look-up: the consents of a team's persons.
CREATE INDEX consent_subjects_beneficiary ON consent_subjects(team, beneficiary);
-- A hub upgraded with consents already merged fills the table at the next
-- open (consentSubjectsBackfill), then clears the flag.
INSERT INTO facts_meta(key, value) SELECT 'consent_subjects', 1 WHERE EXISTS (SELECT 1 FROM records WHERE kind = 'consent');
