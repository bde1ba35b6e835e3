-- Hub store, version 9: a counter of the writes to consents (issue #13).
-- A pushed batch's consent look-up runs in its connection's reader, ahead
-- of its turn at the writer, and is used in that turn only if no consent
-- was written in between: the counter, read in both, must have moved with
-- any write to a consent, whoever made it (a batch, an erasure, a purge, a
-- `hub` command beside the server). Triggers make it so, without every
-- writer having to remember it.
CREATE TABLE consent_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
);
INSERT INTO consent_version(id, n) VALUES (1, 0);
CREATE TRIGGER consent_version_insert AFTER INSERT ON records WHEN NEW.kind = 'consent'
BEGIN UPDATE consent_version SET n = n + 1; END;
CREATE TRIGGER consent_version_update AFTER UPDATE ON records WHEN NEW.kind = 'consent' OR OLD.kind = 'consent'
BEGIN UPDATE consent_version SET n = n + 1; END;
CREATE TRIGGER consent_version_delete AFTER DELETE ON records WHEN OLD.kind = 'consent'
BEGIN UPDATE consent_version SET n = n + 1; END;
CREATE TRIGGER consent_subjects_version_insert AFTER INSERT ON consent_subjects
BEGIN UPDATE consent_version SET n = n + 1; END;
CREATE TRIGGER consent_subjects_version_update AFTER UPDATE ON consent_subjects
BEGIN UPDATE consent_version SET n = n + 1; END;
CREATE TRIGGER consent_subjects_version_delete AFTER DELETE ON consent_subjects
BEGIN UPDATE consent_version SET n = n + 1; END;
