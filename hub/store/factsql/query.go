// Package factsql holds what the hub's SQL stores share in reading the
// fact tables for hub/report: the query writer, the column lists, and the
// scanning of fact rows. The stores keep their SQL dialect (a Dialect:
// placeholders and lists) and their driver calls.
//
// Each query is a UNION ALL of the branches report.Query.Branches gives,
// each reading contiguous ranges of an index: the primary key (team,
// departement, day, id) for départements, for everywhere and for communes
// outside any EPCI — with the teams listed, all of them when the query
// names none, and the départements listed, all of them for everywhere;
// the (epci, day) index for EPCI and for the other communes. Resolve made
// the areas disjoint, so the branches never count a row twice.
package factsql

import (
	"strings"

	"numeribus/hub/report"
	"numeribus/internal/territoire"
)

// Dialect renders what differs between the stores' SQL.
type Dialect interface {
	// Param returns the placeholder of argument n (from 1), whose SQL type
	// is typ ("" when the context gives it).
	Param(n int, typ string) string
	// In returns the condition "col is one of vs", adding its arguments
	// with arg, which returns their placeholders.
	In(col string, vs []string, arg func(v any, typ string) string) string
}

// Filters says which filter columns a fact table has.
type Filters struct {
	Vehicule, Mediateur bool
}

// Query is one query over a fact table: its SQL and arguments.
type Query struct {
	SQL  string
	Args []any
}

// Build returns SELECT cols FROM table for q: one SELECT per branch of
// q's areas, joined by UNION ALL. allTeams lists every team, for a query
// that names none.
func Build(d Dialect, table, cols string, q report.Query, o Filters, allTeams func() ([]string, error)) (Query, error) {
	branches, err := q.Branches(territoire.Default())
	if err != nil {
		return Query{}, err
	}
	teams := q.Teams
	if teams == nil {
		if teams, err = allTeams(); err != nil {
			return Query{}, err
		}
	}
	w := &writer{d: d, q: q, o: o, teams: teams}
	for _, br := range branches {
		if w.b.Len() > 0 {
			w.b.WriteString(" UNION ALL ")
		}
		w.b.WriteString("SELECT " + cols + " FROM " + table + " WHERE ")
		if br.Departements != nil {
			w.byDepartements(br)
		} else {
			w.byEPCI(br)
		}
	}
	if len(branches) == 0 { // only unknown communes
		w.b.WriteString("SELECT " + cols + " FROM " + table + " WHERE 1 = 0")
	}
	return Query{w.b.String(), w.args}, nil
}

// writer writes the SQL of a fact query, branch after branch.
type writer struct {
	d     Dialect
	b     strings.Builder
	args  []any
	q     report.Query
	o     Filters
	teams []string // the query's teams, or every team
}

// arg adds v to the arguments and returns its placeholder.
func (w *writer) arg(v any, typ string) string {
	w.args = append(w.args, v)
	return w.d.Param(len(w.args), typ)
}

func (w *writer) in(col string, vs []string) {
	w.b.WriteString(w.d.In(col, vs, w.arg))
}

func (w *writer) period() {
	w.b.WriteString(" AND day BETWEEN " + w.arg(w.q.From, "integer") + " AND " + w.arg(w.q.To, "integer"))
}

func (w *writer) communes(br report.Branch) {
	if br.Communes != nil {
		w.b.WriteString(" AND ")
		w.in("commune", br.Communes)
	}
}

// byDepartements reads teams × départements over the period, by the
// table's key (team, departement, day, id).
func (w *writer) byDepartements(br report.Branch) {
	w.in("team", w.teams)
	w.b.WriteString(" AND ")
	w.in("departement", br.Departements)
	w.period()
	w.communes(br)
	w.filters(false)
}

// byEPCI reads EPCI over the period, by the (epci, day) index; teams are
// a filter there.
func (w *writer) byEPCI(br report.Branch) {
	w.in("epci", br.EPCIs)
	w.period()
	w.communes(br)
	w.filters(true)
}

// filters writes the conditions of the columns the table has.
func (w *writer) filters(withTeams bool) {
	if withTeams && w.q.Teams != nil {
		w.b.WriteString(" AND ")
		w.in("team", w.q.Teams)
	}
	if w.o.Vehicule && w.q.Vehicle != "" {
		w.b.WriteString(" AND vehicule = " + w.arg(w.q.Vehicle, ""))
	}
	if w.o.Mediateur && w.q.Mediateur != "" {
		w.b.WriteString(" AND mediateur = " + w.arg(w.q.Mediateur, ""))
	}
}
