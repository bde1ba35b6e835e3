-- Hub store on PostgreSQL, version 2: the national list of mediation
-- places a coordinator imports (schema/hub/0007_places.sql).
CREATE TABLE places (
    ref     text PRIMARY KEY,
    nom     text NOT NULL,
    commune text NOT NULL,
    lat     double precision,
    lon     double precision
);
CREATE TABLE place_imports (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      bigint NOT NULL,
    email   text NOT NULL,
    file    text NOT NULL,
    format  text NOT NULL,
    places  integer NOT NULL,
    skipped integer NOT NULL
);
