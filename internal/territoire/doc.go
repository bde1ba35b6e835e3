// Package territoire embeds the French administrative territories — communes,
// EPCI (intercommunalités), départements and régions — and offers look-ups
// over them.
//
// It exists because mediators pick the commune of a stop or of a
// beneficiary's residence while offline, so the data must ship inside the
// binary, and because coordinators aggregate activity by commune, EPCI,
// département and région, which needs the links between them. Nothing reads
// the network or the file system: the data is compiled in with //go:embed.
//
// Use [Default] for the shared, lazily loaded [Index]; [Index.Search] backs
// commune autocompletion and [Normalize] folds names for matching.
//
// # Data and licence
//
// The data (directory data/) is derived from the npm package
// @etalab/decoupage-administratif version 6.0.0, © 2018-2019 Etalab,
// distributed under the MIT licence (data/LICENSE). data/README.md tells how
// the embedded files were produced. Populations are those published in that
// release.
package territoire
