package factsql

import (
	"log/slog"
	"strings"

	"numeribus/hub/report"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// The fact tables hold the statistical fields of every live record in
// indexed columns, for hub/report, rewritten from the merged state of each
// record the change log names with the rules of hub/report (ActivityFactOf
// and the other FactOf functions). The stores write the rows AppendRow
// gives: facts are derived data and must never stop the sync nor a
// report, so a record whose state does not decode gets no facts (and a
// warning).

// Table is one fact table: Cols are the columns of its rows, in the order
// AppendRow gives their values.
type Table struct {
	Name string
	Cols []string
	// Device says the last column is "device", the number of the device
	// that created the record (records.origin), given to AppendRow.
	Device bool
}

var (
	ActivityTable = &Table{"activity_facts", []string{
		"id", "team", "departement", "day", "commune", "epci", "region", "vehicule", "mediateur",
		"type", "duree", "type_lieu", "participants", "beneficiaire", "suivis", "thematiques", "demarches",
		"materiel", "structure_partenaire", "autonomie", "oriente", "structure_redirection", "niveau",
		"pass_numerique", "arret", "deja_accompagne", "genres", "tranches_age", "statuts_sociaux", "device"}, true}
	BeneficiaryTable = &Table{"beneficiary_facts", []string{
		"id", "team", "commune", "genre", "tranche_age", "statut_social", "suivi", "premier"}, false}
	AssessmentTable = &Table{"assessment_facts", []string{
		"id", "team", "departement", "day", "commune", "epci", "region", "mediateur", "beneficiaire",
		"information_donnees", "communication_collaboration", "creation_contenu", "protection_securite",
		"environnement_numerique", "autonomie_globale", "outil"}, false}
	TourStopTable = &Table{"tourstop_facts", []string{
		"id", "team", "departement", "day", "commune", "epci", "region", "vehicule", "realise"}, false}

	// Tables lists every fact table, in the order they are written.
	Tables = []*Table{ActivityTable, BeneficiaryTable, AssessmentTable, TourStopTable}
)

// TableOf returns the fact table of kind k, nil for kinds without facts
// (consents).
func TableOf(k domain.Kind) *Table {
	switch k {
	case domain.KindActivity:
		return ActivityTable
	case domain.KindBeneficiary:
		return BeneficiaryTable
	case domain.KindAssessment:
		return AssessmentTable
	case domain.KindTourStop:
		return TourStopTable
	}
	return nil
}

// AppendRow appends to dst the row of facts, in TableOf(k)'s Cols, of the
// record id of kind k and team whose merged state is st; device is the
// value of the device column. It returns dst and false, with nothing
// appended, for a deleted record or one whose state does not decode
// (logged to log): the record has no facts.
func AppendRow(dst []any, log *slog.Logger, id ident.ID, k domain.Kind, team string, device any, st *merge.State) ([]any, bool) {
	if st.IsDeleted() {
		return dst, false
	}
	rec, err := change.Decode(k, id, st.Fields)
	if err != nil {
		log.Warn("record without facts: its state does not decode", "record", id.String(), "kind", string(k), "err", err)
		return dst, false
	}
	idb := append([]byte(nil), id[:]...)
	switch r := rec.(type) {
	case *domain.Activity:
		return activityRow(dst, log, idb, team, device, r), true
	case *domain.Beneficiary:
		f := report.BeneficiaryFactOf(r)
		return append(dst, idb, team, f.Commune, f.Genre, f.TrancheAge, f.StatutSocial, flag(f.Suivi), f.First), true
	case *domain.Assessment:
		f, p := report.AssessmentFactOf(r, team)
		dst = append(dst, idb, team, p.Departement, f.Day, p.Commune, p.EPCI, p.Region, f.Mediateur, idOrNil(f.Beneficiaire))
		for _, v := range f.Scores {
			if v >= 0 {
				dst = append(dst, v)
			} else {
				dst = append(dst, nil)
			}
		}
		return append(dst, f.AutonomieGlobale, f.Outil), true
	case *domain.TourStop:
		f, p := report.TourStopFactOf(r, team)
		return append(dst, idb, team, p.Departement, f.Day, p.Commune, p.EPCI, p.Region, f.Vehicule, flag(f.Realise)), true
	}
	return dst, false
}

// activityRow appends the facts of a (report.ActivityFactOf). The person
// of an individual session goes in beneficiaire, the followed
// participants of a workshop in suivis, end to end.
func activityRow(dst []any, log *slog.Logger, id []byte, team string, device any, a *domain.Activity) []any {
	f, unknown := report.ActivityFactOf(a, team)
	if len(unknown) > 0 {
		log.Warn("codes without a fact bit left out of the indicators", "record", a.ID.String(),
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
	return append(dst, id, team, f.Departement, f.Day, f.Commune, f.EPCI, f.Region, f.Vehicule, f.Mediateur,
		f.Type, f.Duree, f.TypeLieu, f.Participants, ben, suivis,
		int64(f.Thematiques), int64(f.Demarches), int64(f.Materiel),
		f.StructurePartenaire, f.Autonomie, flag(f.Oriente), f.StructureRedirection, f.Niveau, f.PassNumerique,
		idOrNil(f.Arret), f.DejaAccompagne, textOrNil(report.FormatCounts(domain.Genres, f.Genres)),
		textOrNil(report.FormatCounts(domain.TranchesAge, f.TranchesAge)),
		textOrNil(report.FormatCounts(domain.StatutsSociaux, f.StatutsSociaux)), device)
}

// idOrNil is a record id as a nullable blob: NULL for none.
func idOrNil(id ident.ID) any {
	if id.IsZero() {
		return nil
	}
	return append([]byte(nil), id[:]...)
}

// textOrNil is a nullable text: NULL for "".
func textOrNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// flag is a flag as the integer column that holds it.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}
