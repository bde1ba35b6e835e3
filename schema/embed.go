// Package schema holds the database migrations and the sync protocol
// specification. Migrations are numbered SQL files applied in order at
// open and recorded in the database; they are embedded so a binary always
// carries the schema it was built for.
package schema

import "embed"

// Agent holds the agent store's migrations, agent/NNNN_name.sql.
//
//go:embed agent/*.sql
var Agent embed.FS

// Hub holds the hub store's migrations, hub/NNNN_name.sql.
//
//go:embed hub/*.sql
var Hub embed.FS

// HubPG holds the hub store's migrations for PostgreSQL, hubpg/NNNN_name.sql:
// the same tables as Hub in PostgreSQL's types.
//
//go:embed hubpg/*.sql
var HubPG embed.FS
