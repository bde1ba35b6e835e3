-- Hub store, version 7: the national list of mediation places a
-- coordinator imports (issue #15, hub/places), for the map's white zones.
-- Each import replaces the list whole, in one transaction.
CREATE TABLE places (
    ref     TEXT PRIMARY KEY, -- the place's id in its file
    nom     TEXT NOT NULL,
    commune TEXT NOT NULL,    -- current INSEE code
    lat     REAL,             -- NULL when the file gave no coordinates
    lon     REAL
) WITHOUT ROWID;
-- Who imported which file, when: the last row is the list in place.
CREATE TABLE place_imports (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL, -- Unix ms
    email   TEXT NOT NULL,
    file    TEXT NOT NULL,
    format  TEXT NOT NULL,
    places  INTEGER NOT NULL,
    skipped INTEGER NOT NULL
);
