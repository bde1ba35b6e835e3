package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The fact tables (schema/hubpg/0001_init.sql, the same columns as on
// SQLite) hold the statistical fields of every live record in indexed
// columns, for hub/report. They are rewritten from the merged state of
// each record the change log names, following the log (facts_follow.go),
// with the backend-neutral rules of hub/report (ActivityFactOf and the
// other FactOf functions): this file only writes their results down.
//
// Facts are derived data and must never stop the sync nor a report: a
// record whose state does not decode gets no facts (and a warning).

// factTable is one fact table and its columns, in the order of the rows
// the builders below return (COPY's column list).
type factTable struct {
	name string
	cols []string
}

var (
	activityFactTable = &factTable{"activity_facts", []string{
		"id", "team", "departement", "day", "commune", "epci", "region", "device", "vehicule", "mediateur",
		"type", "duree", "type_lieu", "participants", "beneficiaire", "suivis", "thematiques", "demarches",
		"materiel", "structure_partenaire", "autonomie", "oriente", "structure_redirection", "niveau",
		"pass_numerique", "arret", "deja_accompagne", "genres", "tranches_age", "statuts_sociaux"}}
	beneficiaryFactTable = &factTable{"beneficiary_facts", []string{
		"id", "team", "commune", "genre", "tranche_age", "statut_social", "suivi", "premier"}}
	assessmentFactTable = &factTable{"assessment_facts", []string{
		"id", "team", "departement", "day", "commune", "epci", "region", "mediateur", "beneficiaire",
		"information_donnees", "communication_collaboration", "creation_contenu", "protection_securite",
		"environnement_numerique", "autonomie_globale", "outil"}}
	tourstopFactTable = &factTable{"tourstop_facts", []string{
		"id", "team", "departement", "day", "commune", "epci", "region", "vehicule", "realise"}}

	// factTables lists every fact table, in the order they are written.
	factTables = []*factTable{activityFactTable, beneficiaryFactTable, assessmentFactTable, tourstopFactTable}
)

// factTableOf returns the fact table of kind k, nil for kinds without
// facts (consents).
func factTableOf(k domain.Kind) *factTable {
	switch k {
	case domain.KindActivity:
		return activityFactTable
	case domain.KindBeneficiary:
		return beneficiaryFactTable
	case domain.KindAssessment:
		return assessmentFactTable
	case domain.KindTourStop:
		return tourstopFactTable
	}
	return nil
}

// factRows gathers the facts of the records a catch-up step rewrites:
// every record touched loses its rows, the live ones get new ones. Delete
// then COPY, rather than an upsert per row, because a step rewrites
// thousands of records and a record may move to another key (its day or
// its département changed).
type factRows struct {
	log     *slog.Logger
	touched map[*factTable][][]byte
	rows    map[*factTable][][]any
}

func newFactRows(log *slog.Logger) *factRows {
	return &factRows{log: log, touched: map[*factTable][][]byte{}, rows: map[*factTable][][]any{}}
}

// add queues the facts of one record's merged state: a deleted record's
// go, a live one's are rewritten. origin is the device that created the
// record (activity_facts.device).
func (w *factRows) add(id ident.ID, k domain.Kind, team string, origin int64, st *merge.State) {
	t := factTableOf(k)
	if t == nil {
		return
	}
	idb := append([]byte(nil), id[:]...)
	w.touched[t] = append(w.touched[t], idb)
	if st.IsDeleted() {
		return
	}
	rec, err := change.Decode(k, id, st.Fields)
	if err != nil {
		w.log.Warn("record without facts: its state does not decode", "record", id.String(), "kind", string(k), "err", err)
		return
	}
	var row []any
	switch r := rec.(type) {
	case *domain.Activity:
		row = w.activityRow(idb, team, origin, r)
	case *domain.Beneficiary:
		row = beneficiaryRow(idb, team, r)
	case *domain.Assessment:
		row = assessmentRow(idb, team, r)
	case *domain.TourStop:
		row = tourstopRow(idb, team, r)
	default:
		return
	}
	w.rows[t] = append(w.rows[t], row)
}

// write deletes the rows of every record touched, then copies the new
// ones in, table by table, in tx.
func (w *factRows) write(ctx context.Context, tx pgx.Tx) error {
	for _, t := range factTables {
		if ids := w.touched[t]; len(ids) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM `+t.name+` WHERE id = ANY($1)`, ids); err != nil {
				return fmt.Errorf("deleting %s: %w", t.name, err)
			}
		}
		if rows := w.rows[t]; len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.cols, pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("writing %s: %w", t.name, err)
			}
		}
	}
	return nil
}

// factID is a record id as a nullable bytea: NULL for none.
func factID(id ident.ID) any {
	if id.IsZero() {
		return nil
	}
	return append([]byte(nil), id[:]...)
}

// factText is a nullable text: NULL for "".
func factText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// factBool is a flag as the integer column that holds it (as on SQLite).
func factBool(b bool) int {
	if b {
		return 1
	}
	return 0
}

// activityRow returns the facts of a (report.ActivityFactOf) as a row.
// The person of an individual session goes in beneficiaire, the followed
// participants of a workshop in suivis, end to end.
func (w *factRows) activityRow(id []byte, team string, origin int64, a *domain.Activity) []any {
	f, unknown := report.ActivityFactOf(a, team)
	if len(unknown) > 0 {
		w.log.Warn("codes without a fact bit left out of the indicators", "record", a.ID.String(),
			"codes", strings.Join(unknown, ","))
	}
	var ben, suivis any
	switch {
	case f.Type == "collectif" && len(f.Beneficiaires) > 0:
		b := make([]byte, 0, 16*len(f.Beneficiaires))
		for _, x := range f.Beneficiaires {
			b = append(b, x[:]...)
		}
		suivis = b
	case f.Type != "collectif" && len(f.Beneficiaires) > 0:
		ben = factID(f.Beneficiaires[0])
	}
	return []any{id, team, f.Departement, f.Day, f.Commune, f.EPCI, f.Region, origin, f.Vehicule, f.Mediateur,
		f.Type, f.Duree, f.TypeLieu, f.Participants, ben, suivis,
		int64(f.Thematiques), int64(f.Demarches), int64(f.Materiel),
		f.StructurePartenaire, f.Autonomie, factBool(f.Oriente), f.StructureRedirection, f.Niveau, f.PassNumerique,
		factID(f.Arret), f.DejaAccompagne, factText(report.FormatCounts(domain.Genres, f.Genres)),
		factText(report.FormatCounts(domain.TranchesAge, f.TranchesAge)),
		factText(report.FormatCounts(domain.StatutsSociaux, f.StatutsSociaux))}
}

func beneficiaryRow(id []byte, team string, b *domain.Beneficiary) []any {
	f := report.BeneficiaryFactOf(b)
	return []any{id, team, f.Commune, f.Genre, f.TrancheAge, f.StatutSocial, factBool(f.Suivi), f.First}
}

func assessmentRow(id []byte, team string, a *domain.Assessment) []any {
	f, p := report.AssessmentFactOf(a, team)
	row := []any{id, team, p.Departement, f.Day, p.Commune, p.EPCI, p.Region, f.Mediateur, factID(f.Beneficiaire)}
	for _, v := range f.Scores {
		if v >= 0 {
			row = append(row, v)
		} else {
			row = append(row, nil)
		}
	}
	return append(row, f.AutonomieGlobale, f.Outil)
}

func tourstopRow(id []byte, team string, t *domain.TourStop) []any {
	f, p := report.TourStopFactOf(t, team)
	return []any{id, team, p.Departement, f.Day, p.Commune, p.EPCI, p.Region, f.Vehicule, factBool(f.Realise)}
}
