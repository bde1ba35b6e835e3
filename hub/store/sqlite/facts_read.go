package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"numeribus/hub/report"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// The Source of hub/report over the fact tables. Each query is a UNION ALL
// of branches that each read contiguous ranges of an index: the primary
// key (team, departement, day, id) for départements, for everywhere and
// for communes outside any EPCI — with the teams listed, all of them when
// the query names none, and the départements listed, all of them for
// everywhere; the (epci, day) index for EPCI and for the other communes.
// Resolve made the areas disjoint, so the branches never count a row twice.

var _ report.Source = (*Store)(nil)

// factQuery is one query over a fact table: its branches and arguments.
type factQuery struct {
	sql  string
	args []any
}

// tableOpts says which filter columns a fact table has.
type tableOpts struct {
	vehicule, mediateur bool
}

// buildQuery returns SELECT cols FROM table for q: one SELECT per branch
// of q's areas (report.Query.Branches), joined by UNION ALL.
func (s *Store) buildQuery(ctx context.Context, tx *sql.Tx, table, cols string, q report.Query, o tableOpts) (factQuery, error) {
	branches, err := q.Branches(territoire.Default())
	if err != nil {
		return factQuery{}, err
	}
	teams := q.Teams
	if teams == nil {
		if teams, err = allTeams(ctx, tx); err != nil {
			return factQuery{}, err
		}
	}
	w := &queryWriter{q: q, o: o, teams: teams}
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
		w.b.WriteString("SELECT " + cols + " FROM " + table + " WHERE 0")
	}
	return factQuery{w.b.String(), w.args}, nil
}

// queryWriter writes the SQL of a fact query, branch after branch.
type queryWriter struct {
	b     strings.Builder
	args  []any
	q     report.Query
	o     tableOpts
	teams []string // the query's teams, or every team
}

// in writes "col IN (?, …)" with vs as arguments.
func (w *queryWriter) in(col string, vs []string) {
	w.b.WriteString(col + " IN (" + placeholders(len(vs)) + ")")
	for _, v := range vs {
		w.args = append(w.args, v)
	}
}

func (w *queryWriter) period() {
	w.b.WriteString(" AND day BETWEEN ? AND ?")
	w.args = append(w.args, w.q.From, w.q.To)
}

func (w *queryWriter) communes(br report.Branch) {
	if br.Communes != nil {
		w.b.WriteString(" AND ")
		w.in("commune", br.Communes)
	}
}

// byDepartements reads teams × départements over the period, by the
// table's key (team, departement, day, id).
func (w *queryWriter) byDepartements(br report.Branch) {
	w.in("team", w.teams)
	w.b.WriteString(" AND ")
	w.in("departement", br.Departements)
	w.period()
	w.communes(br)
	w.filters(false)
}

// byEPCI reads EPCI over the period, by the (epci, day) index; teams
// are a filter there.
func (w *queryWriter) byEPCI(br report.Branch) {
	w.in("epci", br.EPCIs)
	w.period()
	w.communes(br)
	w.filters(true)
}

// filters writes the conditions of the columns the table has.
func (w *queryWriter) filters(withTeams bool) {
	if withTeams && w.q.Teams != nil {
		w.b.WriteString(" AND ")
		w.in("team", w.q.Teams)
	}
	if w.o.vehicule && w.q.Vehicle != "" {
		w.b.WriteString(" AND vehicule = ?")
		w.args = append(w.args, w.q.Vehicle)
	}
	if w.o.mediateur && w.q.Mediateur != "" {
		w.b.WriteString(" AND mediateur = ?")
		w.args = append(w.args, w.q.Mediateur)
	}
}

func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// allTeams lists every team: those of the devices, which gave every
// record its team.
func allTeams(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT team FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	defer rows.Close()
	teams := []string{}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, fmt.Errorf("listing teams: %w", err)
		}
		teams = append(teams, t)
	}
	return teams, rows.Err()
}

// readTx brings the facts up to the end of the change log, then runs fn
// in a read-only transaction, so a report's queries see one state of the
// facts.
//
// When another process holds the write lock beyond the busy timeout (a
// `hub stats` beside a busy `hub serve`), the report reads the facts as
// they are: the serving hub's follower is bringing them up to date, and a
// command beside a running hub reads rather than fails.
//
// A command beside a running `hub serve` does not bring them up to date
// at all: the hub's follower does, within seconds, and a command's
// catch-up of a busy hub's backlog held the lock in long transactions
// that the other commands waited for.
func (s *Store) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if s.hostThere() {
		return s.readOnly(ctx, fn)
	}
	if err := s.catchUpFacts(ctx); err != nil {
		if !isBusy(err) {
			return err
		}
		s.log.Warn("facts not brought up to date: another process is writing; reading them as they are", "err", err)
	}
	return s.readOnly(ctx, fn)
}

// readOnly runs fn in a read-only transaction.
func (s *Store) readOnly(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// isBusy reports whether err is SQLite's "database is locked" (SQLITE_BUSY
// and its extended codes): another connection holds the write lock.
func isBusy(err error) bool {
	var ce interface{ Code() int }
	return errors.As(err, &ce) && ce.Code()&0xff == 5
}

const activityCols = `id, day, commune, epci, departement, region, team, device, vehicule, mediateur, type, duree,
	type_lieu, participants, beneficiaire, suivis, thematiques, demarches, materiel, structure_partenaire, autonomie,
	oriente, structure_redirection, niveau, pass_numerique, arret, deja_accompagne, genres, tranches_age, statuts_sociaux`

const activityStatCols = `day, commune, type, duree, type_lieu, participants, beneficiaire, suivis, thematiques,
	demarches, materiel, structure_partenaire, autonomie, oriente, structure_redirection, niveau, pass_numerique,
	deja_accompagne, genres, tranches_age, statuts_sociaux`

// Sums implements report.Source: the totals in SQL, and in Go only the
// set of people, from the two id columns of the rows that have any.
func (s *Store) Sums(ctx context.Context, q report.Query) (report.Sums, error) {
	var sums report.Sums
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := s.buildQuery(ctx, tx, "activity_facts", "type, participants, duree, pass_numerique, commune, beneficiaire, suivis",
			q, tableOpts{vehicule: true, mediateur: true})
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(type = 'collectif'), 0), coalesce(sum(participants), 0),
			coalesce(sum(duree), 0), coalesce(sum(pass_numerique), 0), count(DISTINCT nullif(commune, '')) FROM (`+fq.sql+`)`, fq.args...).
			Scan(&sums.Activites, &sums.Collectifs, &sums.Participants, &sums.Minutes, &sums.PassNumerique, &sums.Communes); err != nil {
			return fmt.Errorf("summing activity facts: %w", err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT beneficiaire, suivis FROM (`+fq.sql+`)
			WHERE beneficiaire IS NOT NULL OR length(suivis) >= 16`, fq.args...)
		if err != nil {
			return fmt.Errorf("summing activity facts: %w", err)
		}
		defer rows.Close()
		people := map[ident.ID]struct{}{}
		var ben, suivis []byte
		for rows.Next() {
			if err := rows.Scan(&ben, &suivis); err != nil {
				return fmt.Errorf("summing activity facts: %w", err)
			}
			if len(ben) == len(ident.ID{}) {
				people[ident.ID(ben)] = struct{}{}
			}
			for ; len(suivis) >= 16; suivis = suivis[16:] {
				people[ident.ID(suivis[:16])] = struct{}{}
			}
		}
		sums.Beneficiaires = len(people)
		return rows.Err()
	})
	return sums, err
}

// Activities implements report.Source.
func (s *Store) Activities(ctx context.Context, q report.Query, fn func(*report.ActivityFact) error) error {
	return s.readTx(ctx, func(tx *sql.Tx) error {
		cols := activityCols
		if q.Statistical {
			cols = activityStatCols
		}
		fq, err := s.buildQuery(ctx, tx, "activity_facts", cols, q, tableOpts{vehicule: true, mediateur: true})
		if err != nil {
			return err
		}
		devices := map[int64]string{}
		if !q.Statistical {
			if devices, err = deviceNames(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, fq.sql, fq.args...)
		if err != nil {
			return fmt.Errorf("reading activity facts: %w", err)
		}
		defer rows.Close()
		var (
			a                       report.ActivityFact
			id, ben, suivis, arret  []byte
			device                  int64
			oriente                 bool
			genres, tranches, stats sql.NullString
			them, dem, mat          int64
		)
		for rows.Next() {
			switch {
			case q.Statistical:
				err = rows.Scan(&a.Day, &a.Commune, &a.Type, &a.Duree, &a.TypeLieu, &a.Participants, &ben, &suivis,
					&them, &dem, &mat, &a.StructurePartenaire, &a.Autonomie, &oriente, &a.StructureRedirection,
					&a.Niveau, &a.PassNumerique, &a.DejaAccompagne, &genres, &tranches, &stats)
			default:
				err = rows.Scan(&id, &a.Day, &a.Commune, &a.EPCI, &a.Departement, &a.Region, &a.Team, &device,
					&a.Vehicule, &a.Mediateur, &a.Type, &a.Duree, &a.TypeLieu, &a.Participants, &ben, &suivis,
					&them, &dem, &mat, &a.StructurePartenaire, &a.Autonomie, &oriente, &a.StructureRedirection,
					&a.Niveau, &a.PassNumerique, &arret, &a.DejaAccompagne, &genres, &tranches, &stats)
			}
			if err != nil {
				return fmt.Errorf("reading activity facts: %w", err)
			}
			copy(a.ID[:], id)
			a.Beneficiaires = a.Beneficiaires[:0]
			if len(ben) == len(ident.ID{}) {
				a.Beneficiaires = append(a.Beneficiaires, ident.ID(ben))
			}
			for len(suivis) >= 16 {
				a.Beneficiaires = append(a.Beneficiaires, ident.ID(suivis[:16]))
				suivis = suivis[16:]
			}
			a.Device = devices[device] // "" for Statistical
			a.Thematiques, a.Demarches, a.Materiel = report.Set(them), report.Set(dem), report.Set(mat)
			a.Oriente = oriente
			a.Arret = ident.ID{}
			if len(arret) == len(a.Arret) {
				a.Arret = ident.ID(arret)
			}
			a.Genres = counts(domain.Genres, genres, a.Genres)
			a.TranchesAge = counts(domain.TranchesAge, tranches, a.TranchesAge)
			a.StatutsSociaux = counts(domain.StatutsSociaux, stats, a.StatutsSociaux)
			if err := fn(&a); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading activity facts: %w", err)
		}
		return nil
	})
}

func counts(list *domain.CodeList, s sql.NullString, dst []int) []int {
	if !s.Valid {
		return nil
	}
	return report.DecodeCounts(list, s.String, dst)
}

func deviceNames(ctx context.Context, tx *sql.Tx) (map[int64]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT num, name FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("reading devices: %w", err)
	}
	defer rows.Close()
	m := map[int64]string{}
	for rows.Next() {
		var (
			n    int64
			name string
		)
		if err := rows.Scan(&n, &name); err != nil {
			return nil, fmt.Errorf("reading devices: %w", err)
		}
		m[n] = name
	}
	return m, rows.Err()
}

// beneficiaryChunk is the number of ids looked up per statement.
const beneficiaryChunk = 256

// Beneficiaries implements report.Source. First is the earlier of
// premier_accompagnement and the person's first individual activity.
func (s *Store) Beneficiaries(ctx context.Context, ids []ident.ID, fn func(*report.BeneficiaryFact) error) error {
	if len(ids) == 0 {
		return nil
	}
	return s.readTx(ctx, func(tx *sql.Tx) error {
		var stmts = map[int]*sql.Stmt{}
		defer func() {
			for _, st := range stmts {
				st.Close()
			}
		}()
		args := make([]any, 0, beneficiaryChunk)
		var (
			b     report.BeneficiaryFact
			idb   []byte
			first sql.NullInt64
		)
		for len(ids) > 0 {
			n := min(len(ids), beneficiaryChunk)
			st := stmts[n]
			if st == nil {
				var err error
				st, err = tx.PrepareContext(ctx, `SELECT b.id, b.commune, b.genre, b.tranche_age, b.statut_social, b.suivi, b.premier,
					b.premiere_activite FROM beneficiary_facts b WHERE b.id IN (`+placeholders(n)+`)`)
				if err != nil {
					return fmt.Errorf("reading beneficiary facts: %w", err)
				}
				stmts[n] = st
			}
			args = args[:0]
			for _, id := range ids[:n] {
				args = append(args, id[:])
			}
			ids = ids[n:]
			rows, err := st.QueryContext(ctx, args...)
			if err != nil {
				return fmt.Errorf("reading beneficiary facts: %w", err)
			}
			for rows.Next() {
				if err := rows.Scan(&idb, &b.Commune, &b.Genre, &b.TrancheAge, &b.StatutSocial, &b.Suivi, &b.First, &first); err != nil {
					rows.Close()
					return fmt.Errorf("reading beneficiary facts: %w", err)
				}
				copy(b.ID[:], idb)
				if first.Valid && (b.First == 0 || int(first.Int64) < b.First) {
					b.First = int(first.Int64)
				}
				if err := fn(&b); err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("reading beneficiary facts: %w", err)
			}
		}
		return nil
	})
}

// Assessments implements report.Source.
func (s *Store) Assessments(ctx context.Context, q report.Query, fn func(*report.AssessmentFact) error) error {
	return s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := s.buildQuery(ctx, tx, "assessment_facts", `id, day, commune, team, mediateur, beneficiaire,
			information_donnees, communication_collaboration, creation_contenu, protection_securite,
			environnement_numerique, autonomie_globale, outil`, q, tableOpts{mediateur: true})
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, fq.sql, fq.args...)
		if err != nil {
			return fmt.Errorf("reading assessment facts: %w", err)
		}
		defer rows.Close()
		var (
			a       report.AssessmentFact
			id, ben []byte
			scores  [5]sql.NullInt64
		)
		for rows.Next() {
			if err := rows.Scan(&id, &a.Day, &a.Commune, &a.Team, &a.Mediateur, &ben,
				&scores[0], &scores[1], &scores[2], &scores[3], &scores[4], &a.AutonomieGlobale, &a.Outil); err != nil {
				return fmt.Errorf("reading assessment facts: %w", err)
			}
			copy(a.ID[:], id)
			a.Beneficiaire = ident.ID{}
			if len(ben) == len(a.Beneficiaire) {
				a.Beneficiaire = ident.ID(ben)
			}
			for i, sc := range scores {
				a.Scores[i] = -1
				if sc.Valid {
					a.Scores[i] = int(sc.Int64)
				}
			}
			if err := fn(&a); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading assessment facts: %w", err)
		}
		return nil
	})
}

// TourStops implements report.Source.
func (s *Store) TourStops(ctx context.Context, q report.Query, fn func(*report.TourStopFact) error) error {
	return s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := s.buildQuery(ctx, tx, "tourstop_facts", `id, day, commune, team, vehicule, realise`, q, tableOpts{vehicule: true})
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, fq.sql, fq.args...)
		if err != nil {
			return fmt.Errorf("reading stop facts: %w", err)
		}
		defer rows.Close()
		var (
			t  report.TourStopFact
			id []byte
		)
		for rows.Next() {
			if err := rows.Scan(&id, &t.Day, &t.Commune, &t.Team, &t.Vehicule, &t.Realise); err != nil {
				return fmt.Errorf("reading stop facts: %w", err)
			}
			copy(t.ID[:], id)
			if err := fn(&t); err != nil {
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading stop facts: %w", err)
		}
		return nil
	})
}

// Visits implements report.Source.
func (s *Store) Visits(ctx context.Context, q report.Query) ([]report.Visit, error) {
	byCommune := map[string]*report.Visit{}
	var out []report.Visit
	get := func(c string) *report.Visit {
		v := byCommune[c]
		if v == nil {
			v = &report.Visit{Commune: c}
			byCommune[c] = v
		}
		return v
	}
	err := s.readTx(ctx, func(tx *sql.Tx) error {
		fq, err := s.buildQuery(ctx, tx, "activity_facts", "commune, participants", q, tableOpts{vehicule: true, mediateur: true})
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT commune, count(*), sum(participants) FROM (`+fq.sql+`) WHERE commune != '' GROUP BY commune`, fq.args...)
		if err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c    string
				n, p int
			)
			if err := rows.Scan(&c, &n, &p); err != nil {
				return fmt.Errorf("reading visits: %w", err)
			}
			v := get(c)
			v.Activities, v.Accompagnements = n, p
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		if q.Mediateur != "" {
			return nil
		}
		fq, err = s.buildQuery(ctx, tx, "tourstop_facts", "commune, realise", q, tableOpts{vehicule: true})
		if err != nil {
			return err
		}
		rows2, err := tx.QueryContext(ctx, `SELECT commune, count(*) FROM (`+fq.sql+`) WHERE realise AND commune != '' GROUP BY commune`, fq.args...)
		if err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		defer rows2.Close()
		for rows2.Next() {
			var (
				c string
				n int
			)
			if err := rows2.Scan(&c, &n); err != nil {
				return fmt.Errorf("reading visits: %w", err)
			}
			get(c).Stops = n
		}
		return rows2.Err()
	})
	if err != nil {
		return nil, err
	}
	for _, v := range byCommune {
		out = append(out, *v)
	}
	return out, nil
}
