package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The fact tables (schema/hub/0002_facts.sql) hold the statistical fields
// of every live record in indexed columns, for hub/report. They are
// rewritten from the merged state of each record the change log names,
// following the log (facts_follow.go), so that the indicators always agree
// with the records; an existing hub builds them from its records once, at
// open (backfillFacts).
//
// Facts are derived data and must never stop the sync: a record whose
// state does not decode gets no facts (and a warning), it does not fail
// the batch.

// factTable is one fact table: its columns, in the order of the values
// the row builders return. The device column, when present, is filled in
// SQL from the record's origin, the device that created it.
type factTable struct {
	name    string
	cols    []string
	device  bool     // a device column filled from records.origin
	queries []string // INSERT OR REPLACE for each of rowSizes
	del     string
}

func newFactTable(name string, device bool, cols ...string) *factTable {
	t := &factTable{name: name, cols: cols, device: device}
	all := cols
	group := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ")
	if device {
		all = append(append([]string(nil), cols...), "device")
		group += ", (SELECT origin FROM records WHERE id = ?)"
	}
	group += ")"
	head := "INSERT OR REPLACE INTO " + name + "(" + strings.Join(all, ", ") + ") VALUES "
	for _, n := range rowSizes {
		t.queries = append(t.queries, head+strings.TrimSuffix(strings.Repeat(group+", ", n), ", "))
	}
	t.del = "DELETE FROM " + name + " WHERE id = ?"
	return t
}

// width is the number of arguments of one row.
func (t *factTable) width() int {
	if t.device {
		return len(t.cols) + 1
	}
	return len(t.cols)
}

var (
	activityFacts = newFactTable("activity_facts", true,
		"id", "team", "departement", "day", "commune", "epci", "region", "vehicule", "mediateur",
		"type", "duree", "type_lieu", "participants", "beneficiaire", "suivis", "thematiques", "demarches",
		"materiel", "structure_partenaire", "autonomie", "oriente", "structure_redirection", "niveau",
		"pass_numerique", "arret", "deja_accompagne", "genres", "tranches_age", "statuts_sociaux")
	beneficiaryFacts = newFactTable("beneficiary_facts", false,
		"id", "team", "commune", "genre", "tranche_age", "statut_social", "suivi", "premier")
	assessmentFacts = newFactTable("assessment_facts", false,
		"id", "team", "departement", "day", "commune", "epci", "region", "mediateur", "beneficiaire",
		"information_donnees", "communication_collaboration", "creation_contenu", "protection_securite",
		"environnement_numerique", "autonomie_globale", "outil")
	tourstopFacts = newFactTable("tourstop_facts", false,
		"id", "team", "departement", "day", "commune", "epci", "region", "vehicule", "realise")
)

// factTableOf returns the fact table of kind k, nil for kinds without
// facts (consents).
func factTableOf(k domain.Kind) *factTable {
	switch k {
	case domain.KindActivity:
		return activityFacts
	case domain.KindBeneficiary:
		return beneficiaryFacts
	case domain.KindAssessment:
		return assessmentFacts
	case domain.KindTourStop:
		return tourstopFacts
	}
	return nil
}

// factWriter gathers the fact rows of a transaction, then writes them.
type factWriter struct {
	s    *Store
	rows map[*factTable][]any
	dels map[*factTable][]any
}

func (s *Store) newFactWriter() *factWriter {
	return &factWriter{s: s, rows: map[*factTable][]any{}, dels: map[*factTable][]any{}}
}

// add queues the facts of one record's merged state: a deleted record's
// go, a live one's are rewritten.
func (w *factWriter) add(id ident.ID, k domain.Kind, team string, st *merge.State) {
	t := factTableOf(k)
	if t == nil {
		return
	}
	idArg := append([]byte(nil), id[:]...)
	if st.IsDeleted() {
		w.dels[t] = append(w.dels[t], idArg)
		return
	}
	rec, err := change.Decode(k, id, st.Fields)
	if err != nil {
		w.s.log.Warn("record without facts: its state does not decode", "record", id.String(), "kind", string(k), "err", err)
		w.dels[t] = append(w.dels[t], idArg)
		return
	}
	args := w.rows[t]
	switch r := rec.(type) {
	case *domain.Activity:
		args = w.activity(args, idArg, team, r)
	case *domain.Beneficiary:
		args = beneficiaryRow(args, idArg, team, r)
	case *domain.Assessment:
		args = assessmentRow(args, idArg, team, r)
	case *domain.TourStop:
		args = tourstopRow(args, idArg, team, r)
	}
	w.rows[t] = args
}

// flush runs the queued deletes and writes in tx.
func (w *factWriter) flush(ctx context.Context, tx *sql.Tx) error {
	for _, t := range []*factTable{activityFacts, beneficiaryFacts, assessmentFacts, tourstopFacts} {
		if ids := w.dels[t]; len(ids) > 0 {
			st, err := tx.PrepareContext(ctx, t.del)
			if err != nil {
				return fmt.Errorf("deleting %s: %w", t.name, err)
			}
			for _, id := range ids {
				if _, err := st.ExecContext(ctx, id); err != nil {
					st.Close()
					return fmt.Errorf("deleting %s: %w", t.name, err)
				}
			}
			st.Close()
		}
		if err := t.put(ctx, tx, w.rows[t]); err != nil {
			return err
		}
	}
	return nil
}

// put writes rows (width() values each) in as few statements as rowSizes
// allow, each prepared once for the transaction.
func (t *factTable) put(ctx context.Context, tx *sql.Tx, args []any) error {
	wd := t.width()
	if len(args)%wd != 0 {
		return fmt.Errorf("writing %s: %d values for rows of %d", t.name, len(args), wd)
	}
	for i, n := range rowSizes {
		if len(args) < n*wd {
			continue
		}
		st, err := tx.PrepareContext(ctx, t.queries[i])
		if err != nil {
			return fmt.Errorf("writing %s: %w", t.name, err)
		}
		for len(args) >= n*wd {
			if _, err := st.ExecContext(ctx, args[:n*wd]...); err != nil {
				st.Close()
				return fmt.Errorf("writing %s: %w", t.name, err)
			}
			args = args[n*wd:]
		}
		st.Close()
	}
	return nil
}

func idOrNil(id ident.ID) any {
	if id.IsZero() {
		return nil
	}
	return append([]byte(nil), id[:]...)
}

func textOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// activity writes the facts of a (report.ActivityFactOf) as a row. The
// person of an individual session goes in beneficiaire, the followed
// participants of a workshop in suivis, end to end.
func (w *factWriter) activity(args []any, id []byte, team string, a *domain.Activity) []any {
	f, unknown := report.ActivityFactOf(a, team)
	if len(unknown) > 0 {
		w.s.log.Warn("codes without a fact bit left out of the indicators", "record", a.ID.String(),
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
		ben = idOrNil(f.Beneficiaires[0])
	}
	args = append(args, id, team, f.Departement, f.Day, f.Commune, f.EPCI, f.Region, f.Vehicule, f.Mediateur,
		f.Type, f.Duree, f.TypeLieu, f.Participants, ben, suivis,
		int64(f.Thematiques), int64(f.Demarches), int64(f.Materiel),
		f.StructurePartenaire, f.Autonomie, f.Oriente, f.StructureRedirection, f.Niveau, f.PassNumerique, idOrNil(f.Arret),
		f.DejaAccompagne, textOrNil(report.FormatCounts(domain.Genres, f.Genres)),
		textOrNil(report.FormatCounts(domain.TranchesAge, f.TranchesAge)),
		textOrNil(report.FormatCounts(domain.StatutsSociaux, f.StatutsSociaux)))
	return append(args, id) // the device: records.origin of this id
}

func beneficiaryRow(args []any, id []byte, team string, b *domain.Beneficiary) []any {
	f := report.BeneficiaryFactOf(b)
	return append(args, id, team, f.Commune, f.Genre, f.TrancheAge, f.StatutSocial, f.Suivi, f.First)
}

func assessmentRow(args []any, id []byte, team string, a *domain.Assessment) []any {
	f, p := report.AssessmentFactOf(a, team)
	args = append(args, id, team, p.Departement, f.Day, p.Commune, p.EPCI, p.Region, f.Mediateur, idOrNil(f.Beneficiaire))
	for _, v := range f.Scores {
		if v >= 0 {
			args = append(args, v)
		} else {
			args = append(args, nil)
		}
	}
	return append(args, f.AutonomieGlobale, f.Outil)
}

func tourstopRow(args []any, id []byte, team string, t *domain.TourStop) []any {
	f, p := report.TourStopFactOf(t, team)
	return append(args, id, team, p.Departement, f.Day, p.Commune, p.EPCI, p.Region, f.Vehicule, f.Realise)
}

// backfillChunk is the number of records read at a time by backfillFacts.
const backfillChunk = 2000

// backfillFacts builds the facts of every record when facts_meta says so
// (a hub upgraded from schema version 1, or facts reset by hand), in one
// transaction, then clears the flag. Open calls it.
func (s *Store) backfillFacts(ctx context.Context) error {
	var need int
	err := s.w.QueryRowContext(ctx, `SELECT coalesce((SELECT value FROM facts_meta WHERE key = 'backfill'), 0)`).Scan(&need)
	if err != nil {
		return fmt.Errorf("reading facts state: %w", err)
	}
	if need == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	defer tx.Rollback()
	n, err := s.rebuildFacts(ctx, tx)
	if err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM facts_meta WHERE key = 'backfill'`); err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("building facts: %w", err)
	}
	s.log.Info("facts built from records", "records", n)
	return nil
}

// rebuildFacts deletes every fact and writes those of every live record,
// in tx; it returns the number of records read.
func (s *Store) rebuildFacts(ctx context.Context, tx *sql.Tx) (int, error) {
	for _, t := range []*factTable{activityFacts, beneficiaryFacts, assessmentFacts, tourstopFacts} {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+t.name); err != nil {
			return 0, err
		}
	}
	type rec struct {
		id    ident.ID
		kind  domain.Kind
		team  string
		state []byte
	}
	last := []byte{}
	total := 0
	for {
		rows, err := tx.QueryContext(ctx, `SELECT id, kind, team, state FROM records
			WHERE id > ? AND deleted = 0 AND kind != 'consent' ORDER BY id LIMIT ?`, last, backfillChunk)
		if err != nil {
			return total, err
		}
		var recs []rec
		for rows.Next() {
			var (
				r   rec
				idb []byte
			)
			if err := rows.Scan(&idb, &r.kind, &r.team, &r.state); err != nil {
				rows.Close()
				return total, err
			}
			copy(r.id[:], idb)
			recs = append(recs, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return total, err
		}
		if len(recs) == 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE beneficiary_facts SET premiere_activite =
				(SELECT min(day) FROM activity_facts a WHERE a.beneficiaire = beneficiary_facts.id)`); err != nil {
				return total, err
			}
			// The facts now cover the whole change log.
			var end int64
			if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(hseq), 0) FROM changes`).Scan(&end); err != nil {
				return total, err
			}
			return total, setFactsCursor(ctx, tx, end)
		}
		w := s.newFactWriter()
		for _, r := range recs {
			st, err := merge.Unmarshal(r.state)
			if err != nil {
				s.log.Warn("record without facts: its state does not decode", "record", r.id.String(), "err", err)
				continue
			}
			w.add(r.id, r.kind, r.team, st)
		}
		if err := w.flush(ctx, tx); err != nil {
			return total, err
		}
		total += len(recs)
		last = append(last[:0], recs[len(recs)-1].id[:]...)
	}
}
