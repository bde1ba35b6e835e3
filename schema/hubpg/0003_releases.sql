-- Hub store on PostgreSQL, version 3: agent releases
-- (schema/hub/0008_releases.sql).
CREATE TABLE release_key (
    id         integer PRIMARY KEY CHECK (id = 1),
    public_key bytea NOT NULL,
    added_at   bigint NOT NULL
);
CREATE TABLE releases (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version   text NOT NULL,
    os        text NOT NULL,
    arch      text NOT NULL,
    size      bigint NOT NULL,
    sha256    bytea NOT NULL,
    signature bytea NOT NULL,
    added_at  bigint NOT NULL,
    UNIQUE (os, arch, version)
);
CREATE TABLE release_chunks (
    release_id bigint NOT NULL REFERENCES releases(id),
    n          bigint NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (release_id, n)
);
