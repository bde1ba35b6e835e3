-- Hub store on PostgreSQL, version 1: the SQLite schema of schema/hub
-- (versions 1 to 6) in PostgreSQL's types. Times are Unix milliseconds
-- (UTC), NULL for "never", as on SQLite, so both backends read the same.

-- Enrolled devices; num is the compact key records and changes use.
CREATE TABLE devices (
    num              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               text NOT NULL UNIQUE,
    name             text NOT NULL UNIQUE,
    team             text NOT NULL,
    device_key       bytea NOT NULL,
    push_key         bytea NOT NULL,
    enrolled_at      bigint NOT NULL,
    revoked_at       bigint,
    last_seen        bigint,
    last_sync        bigint,
    hwm              bigint NOT NULL DEFAULT 0,
    agent_version    text NOT NULL DEFAULT '',
    clock_offset_ms  bigint NOT NULL DEFAULT 0,
    bytes_received   bigint NOT NULL DEFAULT 0,
    changes_received bigint NOT NULL DEFAULT 0
);

-- Single-use enrollment tokens; only their SHA-256 is kept.
CREATE TABLE enrollments (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    name       text NOT NULL,
    team       text NOT NULL,
    expires_at bigint NOT NULL,
    used_at    bigint,
    used_by    text
);

-- Merged state of each record (merge.State.Marshal()).
CREATE TABLE records (
    id      bytea PRIMARY KEY CHECK (length(id) = 16),
    kind    text NOT NULL,
    team    text NOT NULL,
    origin  bigint NOT NULL REFERENCES devices(num),
    hlc     bigint NOT NULL,
    deleted boolean NOT NULL DEFAULT false,
    erased  boolean NOT NULL DEFAULT false,
    state   bytea NOT NULL
);

-- The hub's change log, in hub order. Unlike SQLite's rowid, hseq is not
-- taken at insert: several writers commit in any order, and a reader
-- paging "after cursor" would step over a number taken early and
-- committed late. hseq comes from log_counter, bumped as the last step of
-- a writing transaction: its row lock is held until commit, so numbers
-- are handed out in commit order and what a reader sees is always a
-- prefix of the log (docs/ARCHITECTURE.md, "Commit order").
CREATE TABLE changes (
    hseq      bigint PRIMARY KEY,
    team      text NOT NULL,
    device    bigint NOT NULL REFERENCES devices(num),
    dseq      bigint NOT NULL,
    kind      text NOT NULL,
    record_id bytea NOT NULL,
    op        smallint NOT NULL,
    hlc       bigint NOT NULL,
    fields    bytea NOT NULL
);
CREATE INDEX changes_team_hseq ON changes(team, hseq);
CREATE INDEX changes_record ON changes(record_id);
-- One change per device and seq, whichever instance applies it.
CREATE UNIQUE INDEX changes_device_dseq ON changes(device, dseq);

CREATE TABLE log_counter (
    id   smallint PRIMARY KEY CHECK (id = 1),
    hseq bigint NOT NULL
);
INSERT INTO log_counter(id, hseq) VALUES (1, 0);

-- Changes the hub refused; they count in the device's mark.
CREATE TABLE rejected (
    device    bigint NOT NULL REFERENCES devices(num),
    dseq      bigint NOT NULL,
    hlc       bigint NOT NULL,
    kind      text NOT NULL,
    record_id bytea NOT NULL,
    op        smallint NOT NULL,
    code      text NOT NULL,
    reason    text NOT NULL,
    at        bigint NOT NULL,
    PRIMARY KEY (device, dseq)
);

-- Whose consent each consent record is: the person is inside
-- records.state (CBOR), which no query reads; written with the record by
-- every batch that merges a consent (the hub refuses identifying data of
-- a person without consent, and looks their consents up per batch).
CREATE TABLE consent_subjects (
    id          bytea PRIMARY KEY CHECK (length(id) = 16),
    team        text NOT NULL,
    beneficiary bytea NOT NULL CHECK (length(beneficiary) = 16)
);
CREATE INDEX consent_subjects_beneficiary ON consent_subjects(team, beneficiary);

-- Fact tables: the statistical fields of each record, following the log
-- (hub/report). The same columns as on SQLite.
CREATE TABLE activity_facts (
    team                  text NOT NULL,
    departement           text NOT NULL,
    day                   integer NOT NULL,
    id                    bytea NOT NULL CHECK (length(id) = 16),
    commune               text NOT NULL,
    epci                  text NOT NULL,
    region                text NOT NULL,
    device                bigint NOT NULL,
    vehicule              text NOT NULL,
    mediateur             text NOT NULL,
    type                  text NOT NULL,
    duree                 integer NOT NULL,
    type_lieu             text NOT NULL,
    participants          integer NOT NULL,
    beneficiaire          bytea,
    suivis                bytea,
    thematiques           bigint NOT NULL,
    demarches             bigint NOT NULL,
    materiel              bigint NOT NULL,
    structure_partenaire  text NOT NULL,
    autonomie             text NOT NULL,
    oriente               integer NOT NULL,
    structure_redirection text NOT NULL,
    niveau                text NOT NULL,
    pass_numerique        integer NOT NULL,
    arret                 bytea,
    deja_accompagne       integer NOT NULL,
    genres                text,
    tranches_age          text,
    statuts_sociaux       text,
    PRIMARY KEY (team, departement, day, id)
);
CREATE UNIQUE INDEX activity_facts_id ON activity_facts(id);
CREATE INDEX activity_facts_epci ON activity_facts(epci, day);
CREATE INDEX activity_facts_beneficiaire ON activity_facts(beneficiaire, day) WHERE beneficiaire IS NOT NULL;

CREATE TABLE beneficiary_facts (
    id                bytea PRIMARY KEY CHECK (length(id) = 16),
    team              text NOT NULL,
    commune           text NOT NULL,
    genre             text NOT NULL,
    tranche_age       text NOT NULL,
    statut_social     text NOT NULL,
    suivi             integer NOT NULL,
    premier           integer NOT NULL,
    premiere_activite integer
);

CREATE TABLE assessment_facts (
    team                        text NOT NULL,
    departement                 text NOT NULL,
    day                         integer NOT NULL,
    id                          bytea NOT NULL CHECK (length(id) = 16),
    commune                     text NOT NULL,
    epci                        text NOT NULL,
    region                      text NOT NULL,
    mediateur                   text NOT NULL,
    beneficiaire                bytea,
    information_donnees         integer,
    communication_collaboration integer,
    creation_contenu            integer,
    protection_securite         integer,
    environnement_numerique     integer,
    autonomie_globale           text NOT NULL,
    outil                       text NOT NULL,
    PRIMARY KEY (team, departement, day, id)
);
CREATE UNIQUE INDEX assessment_facts_id ON assessment_facts(id);
CREATE INDEX assessment_facts_epci ON assessment_facts(epci, day);

CREATE TABLE tourstop_facts (
    team        text NOT NULL,
    departement text NOT NULL,
    day         integer NOT NULL,
    id          bytea NOT NULL CHECK (length(id) = 16),
    commune     text NOT NULL,
    epci        text NOT NULL,
    region      text NOT NULL,
    vehicule    text NOT NULL,
    realise     integer NOT NULL,
    PRIMARY KEY (team, departement, day, id)
);
CREATE UNIQUE INDEX tourstop_facts_id ON tourstop_facts(id);
CREATE INDEX tourstop_facts_epci ON tourstop_facts(epci, day);

-- The facts' cursor in the log, and other counters of the follower.
CREATE TABLE facts_meta (
    key   text PRIMARY KEY,
    value bigint NOT NULL
);

-- Dashboard accounts. E-mails are kept lower-cased (the store does it),
-- unique.
CREATE TABLE users (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    role        text NOT NULL CHECK (role IN ('admin', 'coordinator', 'viewer')),
    password    text NOT NULL,
    territories text NOT NULL DEFAULT '',
    created_at  bigint NOT NULL,
    disabled_at bigint
);

CREATE TABLE sessions (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at bigint NOT NULL,
    last_seen  bigint NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint,
    revoked_at bigint
);

CREATE TABLE audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      bigint NOT NULL,
    user_id bigint,
    email   text NOT NULL DEFAULT '',
    action  text NOT NULL,
    what    text NOT NULL DEFAULT '',
    ip      text NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit(at);
