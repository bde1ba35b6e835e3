package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"numeribus/hub/report"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// The Source of hub/report over the fact tables, with SQLite's query
// shape: each query is a UNION ALL of the branches report.Query.Branches
// gives, each reading contiguous ranges of an index — the primary key
// (team, departement, day, id) for départements, for everywhere and for
// communes outside any EPCI, the (epci, day) index for EPCI and the other
// communes. Lists are arrays (col = ANY($n)), which PostgreSQL reads as
// ranges of the index as SQLite reads IN lists. Resolve made the areas
// disjoint, so the branches never count a row twice.

var _ report.Source = (*Store)(nil)

// factQuery is one query over a fact table: its SQL and arguments.
type factQuery struct {
	sql  string
	args []any
}

// factFilters says which filter columns a fact table has.
type factFilters struct {
	vehicule, mediateur bool
}

// factQueryOf returns SELECT cols FROM table for q: one SELECT per branch
// of q's areas, joined by UNION ALL.
func factQueryOf(ctx context.Context, tx pgx.Tx, table, cols string, q report.Query, o factFilters) (factQuery, error) {
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
	w := &factQueryWriter{q: q, o: o, teams: teams}
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
		w.b.WriteString("SELECT " + cols + " FROM " + table + " WHERE false")
	}
	return factQuery{w.b.String(), w.args}, nil
}

// factQueryWriter writes the SQL of a fact query, branch after branch.
type factQueryWriter struct {
	b     strings.Builder
	args  []any
	q     report.Query
	o     factFilters
	teams []string // the query's teams, or every team
}

// arg adds v to the arguments and returns its placeholder.
func (w *factQueryWriter) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// in writes "col = ANY($n)" with vs as the array.
func (w *factQueryWriter) in(col string, vs []string) {
	if vs == nil {
		vs = []string{}
	}
	w.b.WriteString(col + " = ANY(" + w.arg(vs) + "::text[])")
}

func (w *factQueryWriter) period() {
	w.b.WriteString(" AND day BETWEEN " + w.arg(w.q.From) + "::integer AND " + w.arg(w.q.To) + "::integer")
}

func (w *factQueryWriter) communes(br report.Branch) {
	if br.Communes != nil {
		w.b.WriteString(" AND ")
		w.in("commune", br.Communes)
	}
}

// byDepartements reads teams × départements over the period, by the
// table's key (team, departement, day, id).
func (w *factQueryWriter) byDepartements(br report.Branch) {
	w.in("team", w.teams)
	w.b.WriteString(" AND ")
	w.in("departement", br.Departements)
	w.period()
	w.communes(br)
	w.filters(false)
}

// byEPCI reads EPCI over the period, by the (epci, day) index; teams are
// a filter there.
func (w *factQueryWriter) byEPCI(br report.Branch) {
	w.in("epci", br.EPCIs)
	w.period()
	w.communes(br)
	w.filters(true)
}

// filters writes the conditions of the columns the table has.
func (w *factQueryWriter) filters(withTeams bool) {
	if withTeams && w.q.Teams != nil {
		w.b.WriteString(" AND ")
		w.in("team", w.q.Teams)
	}
	if w.o.vehicule && w.q.Vehicle != "" {
		w.b.WriteString(" AND vehicule = " + w.arg(w.q.Vehicle))
	}
	if w.o.mediateur && w.q.Mediateur != "" {
		w.b.WriteString(" AND mediateur = " + w.arg(w.q.Mediateur))
	}
}

// allTeams lists every team: those of the devices, which gave every
// record its team.
func allTeams(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT DISTINCT team FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	teams, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing teams: %w", err)
	}
	if teams == nil {
		teams = []string{}
	}
	return teams, nil
}

// readFacts brings the facts up to the end of the change log as it
// stands (within the facts' readWait), then runs fn in a REPEATABLE READ,
// read-only transaction, so that the queries of one Source call see one
// state of the facts.
//
// When another instance's follower holds the facts' lock past the wait,
// or the backlog is longer than the wait, the report reads the facts as
// they are rather than fail: the followers are bringing them up to date.
func (s *Store) readFacts(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if err := s.facts.catchUp(ctx, time.Now().Add(s.facts.readWait)); err != nil {
		if !errors.Is(err, errFactsBusy) && !errors.Is(err, errFactsBehind) {
			return err
		}
		s.log.Warn("facts not brought up to date; reading them as they are", "err", err)
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("reading facts: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(tx)
}

// idsOf appends the ids of a beneficiaire column and a suivis column
// (ids end to end) to dst.
func idsOf(dst []ident.ID, ben, suivis []byte) []ident.ID {
	if len(ben) == len(ident.ID{}) {
		dst = append(dst, ident.ID(ben))
	}
	for ; len(suivis) >= 16; suivis = suivis[16:] {
		dst = append(dst, ident.ID(suivis[:16]))
	}
	return dst
}

// Sums implements report.Source: the totals in SQL, and in Go only the
// set of people, from the two id columns of the rows that have any.
func (s *Store) Sums(ctx context.Context, q report.Query) (report.Sums, error) {
	var sums report.Sums
	err := s.readFacts(ctx, func(tx pgx.Tx) error {
		fq, err := factQueryOf(ctx, tx, "activity_facts", "type, participants, duree, pass_numerique, commune, beneficiaire, suivis",
			q, factFilters{vehicule: true, mediateur: true})
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE type = 'collectif'), coalesce(sum(participants), 0),
			coalesce(sum(duree), 0), coalesce(sum(pass_numerique), 0), count(DISTINCT nullif(commune, '')) FROM (`+fq.sql+`) AS f`, fq.args...).
			Scan(&sums.Activites, &sums.Collectifs, &sums.Participants, &sums.Minutes, &sums.PassNumerique, &sums.Communes); err != nil {
			return fmt.Errorf("summing activity facts: %w", err)
		}
		rows, err := tx.Query(ctx, `SELECT beneficiaire, suivis FROM (`+fq.sql+`) AS f
			WHERE beneficiaire IS NOT NULL OR octet_length(suivis) >= 16`, fq.args...)
		if err != nil {
			return fmt.Errorf("summing activity facts: %w", err)
		}
		defer rows.Close()
		people := map[ident.ID]struct{}{}
		var (
			ben, suivis []byte
			ids         []ident.ID
		)
		for rows.Next() {
			if err := rows.Scan(&ben, &suivis); err != nil {
				return fmt.Errorf("summing activity facts: %w", err)
			}
			for _, id := range idsOf(ids[:0], ben, suivis) {
				people[id] = struct{}{}
			}
		}
		sums.Beneficiaires = len(people)
		return rows.Err()
	})
	return sums, err
}

const activityCols = `id, day, commune, epci, departement, region, team, device, vehicule, mediateur, type, duree,
	type_lieu, participants, beneficiaire, suivis, thematiques, demarches, materiel, structure_partenaire, autonomie,
	oriente, structure_redirection, niveau, pass_numerique, arret, deja_accompagne, genres, tranches_age, statuts_sociaux`

const activityStatCols = `day, commune, type, duree, type_lieu, participants, beneficiaire, suivis, thematiques,
	demarches, materiel, structure_partenaire, autonomie, oriente, structure_redirection, niveau, pass_numerique,
	deja_accompagne, genres, tranches_age, statuts_sociaux`

// activityScan holds the columns of an activity fact row that need
// converting, reused from row to row.
type activityScan struct {
	id, ben, suivis, arret  []byte
	device                  int64
	oriente                 int
	them, dem, mat          int64
	genres, tranches, stats *string
}

// fill converts the scanned columns into a (devices names the device
// numbers; nil with Statistical).
func (c *activityScan) fill(a *report.ActivityFact, devices map[int64]string) {
	copy(a.ID[:], c.id)
	a.Beneficiaires = idsOf(a.Beneficiaires[:0], c.ben, c.suivis)
	a.Device = devices[c.device]
	a.Thematiques, a.Demarches, a.Materiel = report.Set(c.them), report.Set(c.dem), report.Set(c.mat)
	a.Oriente = c.oriente != 0
	a.Arret = ident.ID{}
	if len(c.arret) == len(a.Arret) {
		a.Arret = ident.ID(c.arret)
	}
	a.Genres = factCounts(domain.Genres, c.genres, a.Genres)
	a.TranchesAge = factCounts(domain.TranchesAge, c.tranches, a.TranchesAge)
	a.StatutsSociaux = factCounts(domain.StatutsSociaux, c.stats, a.StatutsSociaux)
}

// targets returns where rows.Scan puts each column of cols into a and c.
func (c *activityScan) targets(a *report.ActivityFact, statistical bool) []any {
	if statistical {
		return []any{&a.Day, &a.Commune, &a.Type, &a.Duree, &a.TypeLieu, &a.Participants, &c.ben, &c.suivis,
			&c.them, &c.dem, &c.mat, &a.StructurePartenaire, &a.Autonomie, &c.oriente, &a.StructureRedirection,
			&a.Niveau, &a.PassNumerique, &a.DejaAccompagne, &c.genres, &c.tranches, &c.stats}
	}
	return []any{&c.id, &a.Day, &a.Commune, &a.EPCI, &a.Departement, &a.Region, &a.Team, &c.device,
		&a.Vehicule, &a.Mediateur, &a.Type, &a.Duree, &a.TypeLieu, &a.Participants, &c.ben, &c.suivis,
		&c.them, &c.dem, &c.mat, &a.StructurePartenaire, &a.Autonomie, &c.oriente, &a.StructureRedirection,
		&a.Niveau, &a.PassNumerique, &c.arret, &a.DejaAccompagne, &c.genres, &c.tranches, &c.stats}
}

// Activities implements report.Source.
func (s *Store) Activities(ctx context.Context, q report.Query, fn func(*report.ActivityFact) error) error {
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		cols := activityCols
		if q.Statistical {
			cols = activityStatCols
		}
		fq, err := factQueryOf(ctx, tx, "activity_facts", cols, q, factFilters{vehicule: true, mediateur: true})
		if err != nil {
			return err
		}
		var devices map[int64]string
		if !q.Statistical {
			if devices, err = deviceNames(ctx, tx); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, fq.sql, fq.args...)
		if err != nil {
			return fmt.Errorf("reading activity facts: %w", err)
		}
		defer rows.Close()
		var (
			a report.ActivityFact
			c activityScan
		)
		targets := c.targets(&a, q.Statistical)
		for rows.Next() {
			if err := rows.Scan(targets...); err != nil {
				return fmt.Errorf("reading activity facts: %w", err)
			}
			c.fill(&a, devices)
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

// factCounts decodes a breakdown column (nil for NULL) into dst.
func factCounts(list *domain.CodeList, s *string, dst []int) []int {
	if s == nil {
		return nil
	}
	return report.DecodeCounts(list, *s, dst)
}

// deviceNames maps device numbers to names.
func deviceNames(ctx context.Context, tx pgx.Tx) (map[int64]string, error) {
	rows, err := tx.Query(ctx, `SELECT num, name FROM devices`)
	if err != nil {
		return nil, fmt.Errorf("reading devices: %w", err)
	}
	defer rows.Close()
	m := map[int64]string{}
	var (
		n    int64
		name string
	)
	for rows.Next() {
		if err := rows.Scan(&n, &name); err != nil {
			return nil, fmt.Errorf("reading devices: %w", err)
		}
		m[n] = name
	}
	return m, rows.Err()
}

// beneficiaryChunk is the number of ids looked up per statement.
const beneficiaryChunk = 1000

// Beneficiaries implements report.Source. First is the earlier of
// premier_accompagnement and the person's first individual activity.
func (s *Store) Beneficiaries(ctx context.Context, ids []ident.ID, fn func(*report.BeneficiaryFact) error) error {
	if len(ids) == 0 {
		return nil
	}
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		for len(ids) > 0 {
			n := min(len(ids), beneficiaryChunk)
			if err := beneficiaryFacts(ctx, tx, idBytes(ids[:n]), fn); err != nil {
				return err
			}
			ids = ids[n:]
		}
		return nil
	})
}

// beneficiaryFacts calls fn for the facts of the beneficiaries ids.
func beneficiaryFacts(ctx context.Context, tx pgx.Tx, ids [][]byte, fn func(*report.BeneficiaryFact) error) error {
	rows, err := tx.Query(ctx, `SELECT id, commune, genre, tranche_age, statut_social, suivi, premier, premiere_activite
		FROM beneficiary_facts WHERE id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("reading beneficiary facts: %w", err)
	}
	defer rows.Close()
	var (
		b     report.BeneficiaryFact
		idb   []byte
		suivi int
		first *int
	)
	for rows.Next() {
		if err := rows.Scan(&idb, &b.Commune, &b.Genre, &b.TrancheAge, &b.StatutSocial, &suivi, &b.First, &first); err != nil {
			return fmt.Errorf("reading beneficiary facts: %w", err)
		}
		copy(b.ID[:], idb)
		b.Suivi = suivi != 0
		if first != nil && (b.First == 0 || *first < b.First) {
			b.First = *first
		}
		if err := fn(&b); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading beneficiary facts: %w", err)
	}
	return nil
}

// Assessments implements report.Source.
func (s *Store) Assessments(ctx context.Context, q report.Query, fn func(*report.AssessmentFact) error) error {
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		fq, err := factQueryOf(ctx, tx, "assessment_facts", `id, day, commune, team, mediateur, beneficiaire,
			information_donnees, communication_collaboration, creation_contenu, protection_securite,
			environnement_numerique, autonomie_globale, outil`, q, factFilters{mediateur: true})
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, fq.sql, fq.args...)
		if err != nil {
			return fmt.Errorf("reading assessment facts: %w", err)
		}
		defer rows.Close()
		var (
			a       report.AssessmentFact
			id, ben []byte
			scores  [5]*int
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
				if sc != nil {
					a.Scores[i] = *sc
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
	return s.readFacts(ctx, func(tx pgx.Tx) error {
		fq, err := factQueryOf(ctx, tx, "tourstop_facts", `id, day, commune, team, vehicule, realise`, q, factFilters{vehicule: true})
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, fq.sql, fq.args...)
		if err != nil {
			return fmt.Errorf("reading stop facts: %w", err)
		}
		defer rows.Close()
		var (
			t       report.TourStopFact
			id      []byte
			realise int
		)
		for rows.Next() {
			if err := rows.Scan(&id, &t.Day, &t.Commune, &t.Team, &t.Vehicule, &realise); err != nil {
				return fmt.Errorf("reading stop facts: %w", err)
			}
			copy(t.ID[:], id)
			t.Realise = realise != 0
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
	err := s.readFacts(ctx, func(tx pgx.Tx) error {
		if err := activityVisits(ctx, tx, q, byCommune); err != nil {
			return err
		}
		if q.Mediateur != "" {
			return nil
		}
		return stopVisits(ctx, tx, q, byCommune)
	})
	if err != nil {
		return nil, err
	}
	out := make([]report.Visit, 0, len(byCommune))
	for _, v := range byCommune {
		out = append(out, *v)
	}
	return out, nil
}

// visitOf returns the visit of commune c in m, added when new.
func visitOf(m map[string]*report.Visit, c string) *report.Visit {
	v := m[c]
	if v == nil {
		v = &report.Visit{Commune: c}
		m[c] = v
	}
	return v
}

// activityVisits counts the activities and accompagnements of q per commune.
func activityVisits(ctx context.Context, tx pgx.Tx, q report.Query, m map[string]*report.Visit) error {
	fq, err := factQueryOf(ctx, tx, "activity_facts", "commune, participants", q, factFilters{vehicule: true, mediateur: true})
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT commune, count(*), sum(participants) FROM (`+fq.sql+`) AS f
		WHERE commune <> '' GROUP BY commune`, fq.args...)
	if err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	defer rows.Close()
	var (
		c    string
		n, p int
	)
	for rows.Next() {
		if err := rows.Scan(&c, &n, &p); err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		v := visitOf(m, c)
		v.Activities, v.Accompagnements = n, p
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	return nil
}

// stopVisits counts the realised stops of q per commune.
func stopVisits(ctx context.Context, tx pgx.Tx, q report.Query, m map[string]*report.Visit) error {
	fq, err := factQueryOf(ctx, tx, "tourstop_facts", "commune, realise", q, factFilters{vehicule: true})
	if err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `SELECT commune, count(*) FROM (`+fq.sql+`) AS f
		WHERE realise <> 0 AND commune <> '' GROUP BY commune`, fq.args...)
	if err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	defer rows.Close()
	var (
		c string
		n int
	)
	for rows.Next() {
		if err := rows.Scan(&c, &n); err != nil {
			return fmt.Errorf("reading visits: %w", err)
		}
		visitOf(m, c).Stops = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading visits: %w", err)
	}
	return nil
}
