// Package report computes the indicators coordinators expect
// (shared/DOMAIN.md, "Indicators coordinators expect") for the hub's
// dashboard, its exports, its JSON API and `hub stats`: one query layer,
// so that the same filter gives the same numbers everywhere.
//
// It holds no SQL. A [Source] (hub/store/sqlite implements it over the
// fact tables that follow the hub's change log) hands out
// facts — the statistical fields of each live record, never a personal
// one — matching a [Query]; this package turns a user's [Filter] and
// [Scope] into that query and the facts into [Overview], [Coverage] and
// [Vehicles], and writes the exports — CSV, XLSX and « format La Coop »
// (docs/EXPORTS.md) —, which stream a week at a time (export.go).
//
// A coordinator must never see numbers outside their scope: every entry
// point intersects the filter with the scope first ([Resolve]), and a
// filter entirely outside it is refused with [ErrOutOfScope] rather than
// answered with zeros that could be mistaken for real ones.
package report
