package factsql

import (
	"fmt"

	"numeribus/hub/report"
	"numeribus/hub/store"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// Rows is a query's result: *sql.Rows or pgx.Rows. The scan destinations
// here are pointers, []byte, ints and strings, which both drivers fill,
// NULL as a nil pointer or slice.
type Rows = store.Rows

// The columns of the fact tables that the report reads.
const (
	ActivityCols = `id, day, commune, epci, departement, region, team, device, vehicule, mediateur, type, duree,
	type_lieu, participants, beneficiaire, suivis, thematiques, demarches, materiel, structure_partenaire, autonomie,
	oriente, structure_redirection, niveau, pass_numerique, arret, deja_accompagne, genres, tranches_age, statuts_sociaux`

	ActivityStatCols = `day, commune, type, duree, type_lieu, participants, beneficiaire, suivis, thematiques,
	demarches, materiel, structure_partenaire, autonomie, oriente, structure_redirection, niveau, pass_numerique,
	deja_accompagne, genres, tranches_age, statuts_sociaux`

	// SumCols are the activity columns Sums reads.
	SumCols = "type, participants, duree, pass_numerique, commune, beneficiaire, suivis"

	AssessmentCols = `id, day, commune, team, mediateur, beneficiaire,
			information_donnees, communication_collaboration, creation_contenu, protection_securite,
			environnement_numerique, autonomie_globale, outil`

	TourStopCols = `id, day, commune, team, vehicule, realise`
)

// The filter columns of the fact tables.
var (
	ActivityFilters   = Filters{Vehicule: true, Mediateur: true}
	AssessmentFilters = Filters{Mediateur: true}
	TourStopFilters   = Filters{Vehicule: true}
)

// IDsOf appends the ids of a beneficiaire column and a suivis column
// (ids end to end) to dst.
func IDsOf(dst []ident.ID, ben, suivis []byte) []ident.ID {
	if len(ben) == len(ident.ID{}) {
		dst = append(dst, ident.ID(ben))
	}
	for ; len(suivis) >= 16; suivis = suivis[16:] {
		dst = append(dst, ident.ID(suivis[:16]))
	}
	return dst
}

// People counts the distinct people of rows of (beneficiaire, suivis).
func People(rows Rows) (int, error) {
	people := map[ident.ID]struct{}{}
	var (
		ben, suivis []byte
		ids         []ident.ID
	)
	for rows.Next() {
		if err := rows.Scan(&ben, &suivis); err != nil {
			return 0, fmt.Errorf("summing activity facts: %w", err)
		}
		for _, id := range IDsOf(ids[:0], ben, suivis) {
			people[id] = struct{}{}
		}
	}
	return len(people), rows.Err()
}

// Activities calls fn for each row of rows, of ActivityCols, or of
// ActivityStatCols when statistical; devices names the device numbers.
func Activities(rows Rows, statistical bool, devices map[int64]string, fn func(*report.ActivityFact) error) error {
	var (
		a                       report.ActivityFact
		id, ben, suivis, arret  []byte
		device                  int64
		oriente                 int
		them, dem, mat          int64
		genres, tranches, stats *string
	)
	targets := []any{&id, &a.Day, &a.Commune, &a.EPCI, &a.Departement, &a.Region, &a.Team, &device,
		&a.Vehicule, &a.Mediateur, &a.Type, &a.Duree, &a.TypeLieu, &a.Participants, &ben, &suivis,
		&them, &dem, &mat, &a.StructurePartenaire, &a.Autonomie, &oriente, &a.StructureRedirection,
		&a.Niveau, &a.PassNumerique, &arret, &a.DejaAccompagne, &genres, &tranches, &stats}
	if statistical {
		targets = []any{&a.Day, &a.Commune, &a.Type, &a.Duree, &a.TypeLieu, &a.Participants, &ben, &suivis,
			&them, &dem, &mat, &a.StructurePartenaire, &a.Autonomie, &oriente, &a.StructureRedirection,
			&a.Niveau, &a.PassNumerique, &a.DejaAccompagne, &genres, &tranches, &stats}
	}
	for rows.Next() {
		if err := rows.Scan(targets...); err != nil {
			return fmt.Errorf("reading activity facts: %w", err)
		}
		copy(a.ID[:], id)
		a.Beneficiaires = IDsOf(a.Beneficiaires[:0], ben, suivis)
		a.Device = devices[device] // "" for statistical
		a.Thematiques, a.Demarches, a.Materiel = report.Set(them), report.Set(dem), report.Set(mat)
		a.Oriente = oriente != 0
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
}

// counts decodes a breakdown column (nil for NULL) into dst.
func counts(list *domain.CodeList, s *string, dst []int) []int {
	if s == nil {
		return nil
	}
	return report.DecodeCounts(list, *s, dst)
}

// Assessments calls fn for each row of rows, of AssessmentCols.
func Assessments(rows Rows, fn func(*report.AssessmentFact) error) error {
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
}

// TourStops calls fn for each row of rows, of TourStopCols.
func TourStops(rows Rows, fn func(*report.TourStopFact) error) error {
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
}

// Beneficiaries calls fn for each row of rows, of BeneficiaryCols. First
// is the earlier of premier_accompagnement and the person's first
// individual activity.
func Beneficiaries(rows Rows, fn func(*report.BeneficiaryFact) error) error {
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

// BeneficiaryCols are the columns of beneficiary_facts Beneficiaries reads.
const BeneficiaryCols = `id, commune, genre, tranche_age, statut_social, suivi, premier, premiere_activite`

// AddVisit returns the visit of commune c in m, added when new.
func AddVisit(m map[string]*report.Visit, c string) *report.Visit {
	v := m[c]
	if v == nil {
		v = &report.Visit{Commune: c}
		m[c] = v
	}
	return v
}
