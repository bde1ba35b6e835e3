-- Hub store, version 2: facts for the coordinators' indicators (issue #6).
--
-- The merged records keep their state as CBOR (records.state), which no
-- query can filter or count on. The fact tables below hold, per live
-- record, the statistical fields of its merged state in plain indexed
-- columns, rewritten by a follower of the change log (facts_meta.hseq is
-- how far it went), which every report brings to the log's end first, so
-- reports never lag behind the records. They are derived data:
-- deleting every fact row and setting facts_meta.backfill to 1 rebuilds
-- them at the next open.
--
-- Never here: notes, free texts, names, contacts, birth years or any other
-- personal field (domain.PersonalFields), nor the link from an assessment
-- to its person once erased. Dates are integer days yyyymmdd; codes are
-- the text codes of internal/domain; sets of codes (themes, procedures,
-- equipment) are bitmasks over the append-only lists of hub/report
-- (report.Thematiques…), bit i = the list's i-th code.

-- One row per live activity. The primary key clusters a team's rows by
-- département and day: "one département, one year" reads one contiguous
-- range per team (teams are few: the query lists them), "one team, one
-- year" one range per département. departement, epci and region are ''
-- for an activity without a commune (à distance) or with a commune code
-- the embedded territories do not know.
CREATE TABLE activity_facts (
    team                  TEXT NOT NULL,
    departement           TEXT NOT NULL,
    day                   INTEGER NOT NULL,
    id                    BLOB NOT NULL CHECK (length(id) = 16),
    commune               TEXT NOT NULL,
    epci                  TEXT NOT NULL,
    region                TEXT NOT NULL,
    device                INTEGER NOT NULL, -- devices.num of the device that created the record
    vehicule              TEXT NOT NULL,
    mediateur             TEXT NOT NULL,
    type                  TEXT NOT NULL,
    duree                 INTEGER NOT NULL, -- minutes
    type_lieu             TEXT NOT NULL,
    participants          INTEGER NOT NULL, -- accompagnements: 1 individuel, participants.total collectif
    beneficiaire          BLOB,             -- individuel: the beneficiary record's id
    suivis                BLOB,             -- collectif: followed participants' ids, 16 bytes each
    thematiques           INTEGER NOT NULL, -- bitmask
    demarches             INTEGER NOT NULL, -- bitmask
    materiel              INTEGER NOT NULL, -- bitmask
    structure_partenaire  TEXT NOT NULL,
    autonomie             TEXT NOT NULL,
    oriente               INTEGER NOT NULL,
    structure_redirection TEXT NOT NULL,
    niveau                TEXT NOT NULL,
    pass_numerique        INTEGER NOT NULL,
    arret                 BLOB,
    deja_accompagne       INTEGER NOT NULL,
    -- collectif: anonymous head counts, "code=n,code=n" (NULL when none)
    genres                TEXT,
    tranches_age          TEXT,
    statuts_sociaux       TEXT,
    PRIMARY KEY (team, departement, day, id)
) WITHOUT ROWID;
-- Rewriting or deleting one record's facts.
CREATE UNIQUE INDEX activity_facts_id ON activity_facts(id);
-- An EPCI's (or, with a commune condition, a commune's) activity over a period.
CREATE INDEX activity_facts_epci ON activity_facts(epci, day);
-- A beneficiary's first individual activity ("nouveaux bénéficiaires").
CREATE INDEX activity_facts_beneficiaire ON activity_facts(beneficiaire, day) WHERE beneficiaire IS NOT NULL;

-- One row per live beneficiary: statistical fields only. suivi says the
-- record holds identifying fields (it never holds them); an erasure turns
-- it to 0. premier is premier_accompagnement (yyyymmdd), 0 when unknown.
CREATE TABLE beneficiary_facts (
    id            BLOB PRIMARY KEY CHECK (length(id) = 16),
    team          TEXT NOT NULL,
    commune       TEXT NOT NULL,
    genre         TEXT NOT NULL,
    tranche_age   TEXT NOT NULL,
    statut_social TEXT NOT NULL,
    suivi         INTEGER NOT NULL,
    premier       INTEGER NOT NULL,
    -- Day of the person's first individual activity (NULL: none), kept by
    -- the facts follower so that "nouveaux" needs no look-up per person.
    premiere_activite INTEGER
) WITHOUT ROWID;

-- Assessments and stops are clustered like activities, for the same
-- queries.

-- One row per live assessment. beneficiaire links a person's successive
-- assessments (progress) and is NULL once the assessment is erased. Each
-- CRCN domain is its score 0, 1 or 2, NULL when not evaluated.
CREATE TABLE assessment_facts (
    team                        TEXT NOT NULL,
    departement                 TEXT NOT NULL,
    day                         INTEGER NOT NULL,
    id                          BLOB NOT NULL CHECK (length(id) = 16),
    commune                     TEXT NOT NULL,
    epci                        TEXT NOT NULL,
    region                      TEXT NOT NULL,
    mediateur                   TEXT NOT NULL,
    beneficiaire                BLOB,
    information_donnees         INTEGER,
    communication_collaboration INTEGER,
    creation_contenu            INTEGER,
    protection_securite         INTEGER,
    environnement_numerique     INTEGER,
    autonomie_globale           TEXT NOT NULL,
    outil                       TEXT NOT NULL,
    PRIMARY KEY (team, departement, day, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX assessment_facts_id ON assessment_facts(id);
CREATE INDEX assessment_facts_epci ON assessment_facts(epci, day);

-- One row per live tour stop: where and when a vehicle went (realise) or
-- was to go.
CREATE TABLE tourstop_facts (
    team        TEXT NOT NULL,
    departement TEXT NOT NULL,
    day         INTEGER NOT NULL,
    id          BLOB NOT NULL CHECK (length(id) = 16),
    commune     TEXT NOT NULL,
    epci        TEXT NOT NULL,
    region      TEXT NOT NULL,
    vehicule    TEXT NOT NULL,
    realise     INTEGER NOT NULL,
    PRIMARY KEY (team, departement, day, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX tourstop_facts_id ON tourstop_facts(id);
CREATE INDEX tourstop_facts_epci ON tourstop_facts(epci, day);

-- backfill = 1: the facts must be (re)built from records at the next
-- open. A hub upgraded from version 1 with records gets it here.
CREATE TABLE facts_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO facts_meta(key, value) SELECT 'backfill', 1 WHERE EXISTS (SELECT 1 FROM records);
