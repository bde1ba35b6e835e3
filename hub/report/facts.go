package report

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// Source hands out the facts the indicators are computed from. It is the
// seam between this package and a database: hub/store/sqlite implements
// it, a PostgreSQL store can follow. Calls only read; fn must not keep
// the fact it is given (the same value is reused for the next one), and
// an error from fn stops the iteration and is returned.
type Source interface {
	// Activities calls fn for each activity matching q, in no particular
	// order. With q.Statistical only the fields of [Statistical] are
	// filled.
	Activities(ctx context.Context, q Query, fn func(*ActivityFact) error) error
	// Sums returns the totals of the activities matching q, computed in
	// the source (a headline needs no row by row reading).
	Sums(ctx context.Context, q Query) (Sums, error)
	// Beneficiaries calls fn for the facts of the beneficiaries of ids that
	// are known (a deleted record has none), in no particular order.
	Beneficiaries(ctx context.Context, ids []ident.ID, fn func(*BeneficiaryFact) error) error
	// Assessments calls fn for each assessment matching q (q.Vehicle is
	// ignored by the source: the caller decides, see [Overview]).
	Assessments(ctx context.Context, q Query, fn func(*AssessmentFact) error) error
	// TourStops calls fn for each tour stop matching q (q.Mediateur is
	// ignored: a stop has none).
	TourStops(ctx context.Context, q Query, fn func(*TourStopFact) error) error
	// Visits returns, per commune, the activities of q and the realised
	// stops of q (with q.Mediateur, stops are not counted).
	Visits(ctx context.Context, q Query) ([]Visit, error)
	// ActivityDetails calls fn for the details of the live activities of
	// ids, in no particular order; unknown and deleted ones are skipped.
	// Only the exports read them (see [ActivityDetail]).
	ActivityDetails(ctx context.Context, ids []ident.ID, fn func(*ActivityDetail) error) error
}

// ActivityDetail is what an export shows of one activity beyond its
// facts. The fact tables leave these out on purpose — no indicator counts
// free text, and a fact row stays small —, so a Source reads them from the
// record itself: two free texts that name no one (the workshop's title,
// the procedure's name; never the notes), the time of the last change,
// and the place name of the tour stop the activity was recorded at.
type ActivityDetail struct {
	ID                 ident.ID
	TitreAtelier       string
	PrecisionsDemarche string
	// Modified is the physical time of the record's greatest stamp: its
	// last change, as the laptop's clock (hybrid logical) said.
	Modified time.Time
	// Lieu is the place name of the activity's stop ("Place de la
	// mairie"), "" without a stop or when the stop is unknown.
	Lieu string
}

// Query is a [Filter] intersected with a [Scope], as a Source applies it:
// inclusive day bounds, a union of disjoint areas, teams.
type Query struct {
	From, To int // days yyyymmdd, inclusive
	// Areas is the union of territories to count; nil means everywhere,
	// activities without a commune included. Resolve makes them disjoint
	// (no commune belongs to two of them) and of three levels only:
	// département, EPCI, commune (a région becomes its départements).
	Areas []Territory
	// Teams restricts to these teams; nil means every team.
	Teams     []string
	Vehicle   string // "" for any
	Mediateur string // "" for any
	// Statistical asks only for the fields of [Statistical], those the
	// overview aggregates: a million-activity hub's département-year scan
	// skips the places, team, device, vehicle, mediator and stop columns.
	Statistical bool
}

// ActivityFact is the statistical content of one activity: what the
// indicators and the export need, never notes nor any personal field.
type ActivityFact struct {
	ID          ident.ID
	Day         int // yyyymmdd
	Commune     string
	EPCI        string
	Departement string
	Region      string
	Team        string
	Device      string // name of the device that created the record
	Vehicule    string
	Mediateur   string
	Type        string
	Duree       int // minutes
	TypeLieu    string
	// Participants counts accompagnements: 1 for an individual session,
	// participants.total for a workshop.
	Participants int
	// Beneficiaires are the beneficiary records met: the person of an
	// individual session, the followed participants of a workshop. The
	// slice is reused from one fact to the next.
	Beneficiaires        []ident.ID
	Thematiques          Set
	Demarches            Set
	Materiel             Set
	StructurePartenaire  string
	Autonomie            string
	Oriente              bool
	StructureRedirection string
	Niveau               string
	PassNumerique        int
	Arret                ident.ID // zero: none
	DejaAccompagne       int
	// Workshop head counts by criterion, indexed like the domain code
	// lists Genres, TranchesAge and StatutsSociaux (nil when none).
	Genres, TranchesAge, StatutsSociaux []int
}

// Sums are the totals of a set of activities: what a [Headline] shows.
type Sums struct {
	Activites, Collectifs int
	Participants          int // accompagnements
	Minutes               int
	PassNumerique         int
	Communes              int // distinct, activities without one aside
	Beneficiaires         int // distinct beneficiary records, workshop participants included
}

// Statistical lists the fields a [Query] with Statistical fills: all but
// ID, EPCI, Departement, Region, Team, Device, Vehicule, Mediateur and Arret.
const Statistical = "all but ID, EPCI, Departement, Region, Team, Device, Vehicule, Mediateur, Arret"

// BeneficiaryFact is the statistical content of one beneficiary.
type BeneficiaryFact struct {
	ID           ident.ID
	Commune      string
	Genre        string
	TrancheAge   string
	StatutSocial string
	// Suivi says the record holds identifying fields (a followed person);
	// false for anonymous and erased records.
	Suivi bool
	// First is the day of the person's first accompaniment: the earlier of
	// premier_accompagnement and their first individual activity the hub
	// knows; 0 when unknown.
	First int
}

// AssessmentFact is the statistical content of one needs assessment.
type AssessmentFact struct {
	ID           ident.ID
	Day          int
	Commune      string
	Team         string
	Mediateur    string
	Beneficiaire ident.ID // zero once erased
	// Scores per CRCN domain, in the order of domain.DomainesCRCN; -1 for
	// not evaluated.
	Scores           [5]int
	AutonomieGlobale string
	Outil            string
}

// TourStopFact is one planned or realised stop of a vehicle.
type TourStopFact struct {
	ID       ident.ID
	Day      int
	Commune  string
	Team     string
	Vehicule string
	Realise  bool
}

// Visit is the activity in one commune over a query.
type Visit struct {
	Commune         string
	Activities      int
	Accompagnements int
	Stops           int // realised stops
}

// Set is a set of codes of one list as a bitmask over a [Bits] list.
type Set uint64

// Has reports whether bit i is set.
func (s Set) Has(i int) bool { return s&(1<<i) != 0 }

// Len returns the number of codes in s.
func (s Set) Len() int { return bits.OnesCount64(uint64(s)) }

// Bits is an append-only list of the codes of one domain code list: a
// code's position is its bit in a [Set], stored in the fact tables, so it
// must never move. domain's lists may be reordered for the UI; these may
// only grow (TestBitsCoverDomain fails when a domain code is missing).
type Bits struct {
	List  *domain.CodeList
	Codes []string
	index map[string]int
}

func newBits(l *domain.CodeList, codes ...string) *Bits {
	b := &Bits{List: l, Codes: codes, index: make(map[string]int, len(codes))}
	if len(codes) > 64 {
		panic("report: more than 64 codes in " + l.Name)
	}
	for i, c := range codes {
		b.index[c] = i
	}
	return b
}

// Set returns the set of codes; unknown codes are returned apart, for
// the caller to report (they cannot be stored).
func (b *Bits) Set(codes []string) (s Set, unknown []string) {
	for _, c := range codes {
		if i, ok := b.index[c]; ok {
			s |= 1 << i
		} else {
			unknown = append(unknown, c)
		}
	}
	return s, unknown
}

// Codes returns the codes of s in bit order.
func (b *Bits) CodesOf(s Set) []string {
	var out []string
	for i, c := range b.Codes {
		if s.Has(i) {
			out = append(out, c)
		}
	}
	return out
}

// The bit lists of the sets in activity facts. Append only.
var (
	Thematiques = newBits(domain.Thematiques,
		"diagnostic_numerique", "prendre_en_main_du_materiel", "maintenance_de_materiel",
		"gere_ses_contenus_numeriques", "navigation_sur_internet", "email", "bureautique",
		"reseaux_sociaux", "sante", "banque_et_achats_en_ligne", "entrepreneuriat",
		"insertion_professionnelle", "securite_numerique", "parentalite", "scolarite_et_numerique",
		"creer_avec_le_numerique", "culture_numerique", "intelligence_artificielle",
		"aide_aux_demarches_administratives")
	Demarches = newBits(domain.Demarches,
		"papiers_elections_citoyennete", "famille_scolarite", "social_sante", "travail_formation",
		"logement", "transports_mobilite", "argent_impots", "justice", "etrangers_europe",
		"loisirs_sports_culture", "associations")
	Materiels = newBits(domain.Materiels,
		"ordinateur", "telephone", "tablette", "autre", "aucun")
)

// Days are integers yyyymmdd: sortable, readable in SQL, cheap to scan.

// DayOf returns the day of t's calendar date.
func DayOf(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// ParseDay reads an ISO date (AAAA-MM-JJ) or a French one (JJ/MM/AAAA).
func ParseDay(s string) (int, bool) {
	t, ok := domain.ParseDate(s)
	if !ok {
		return 0, false
	}
	return DayOf(t), true
}

// DayTime returns day d at midnight UTC.
func DayTime(d int) time.Time {
	return time.Date(d/10000, time.Month(d/100%100), d%100, 0, 0, 0, 0, time.UTC)
}

// FormatDay writes d as JJ/MM/AAAA, the French form of exports.
func FormatDay(d int) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("%02d/%02d/%04d", d%100, d/100%100, d/10000)
}

// isoDay writes d as AAAA-MM-JJ, the form of the JSON API.
func isoDay(d int) string {
	if d <= 0 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d/10000, d/100%100, d%100)
}

// EncodeCounts writes head counts by code as "code=n,code=n" in the order
// of list, leaving out zeros and codes the list does not have; "" when
// nothing is left. It is how fact tables store a workshop's breakdowns.
func EncodeCounts(list *domain.CodeList, m map[string]int) string {
	var b strings.Builder
	for _, c := range list.Codes {
		if n := m[c.Code]; n > 0 {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s=%d", c.Code, n)
		}
	}
	return b.String()
}

// DecodeCounts reads what EncodeCounts wrote into dst (indexed like list,
// grown and zeroed as needed) and returns it; unknown codes and malformed
// entries are skipped.
func DecodeCounts(list *domain.CodeList, s string, dst []int) []int {
	if cap(dst) < len(list.Codes) {
		dst = make([]int, len(list.Codes))
	}
	dst = dst[:len(list.Codes)]
	clear(dst)
	for s != "" {
		var item string
		item, s, _ = strings.Cut(s, ",")
		code, num, ok := strings.Cut(item, "=")
		if !ok {
			continue
		}
		n := 0
		for i := 0; i < len(num); i++ {
			if num[i] < '0' || num[i] > '9' {
				n = -1
				break
			}
			n = n*10 + int(num[i]-'0')
		}
		if n <= 0 {
			continue
		}
		for i, c := range list.Codes {
			if c.Code == code {
				dst[i] += n
				break
			}
		}
	}
	return dst
}
