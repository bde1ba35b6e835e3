package territoire

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Codes of communes used below, checked against the data in TestCommune.
const (
	nancy      = "54395"
	ajaccio    = "2A004"
	stDie      = "88413" // Saint-Dié-des-Vosges
	evreux     = "27229"
	abergement = "01001" // L'Abergement-Clémenciat
	die        = "26113"
	saintes    = "17415"
	strasbourg = "67482"
	paris      = "75056"
)

func TestLoad(t *testing.T) {
	x, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := x.Len(), 34969; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if got, want := len(x.Departements()), 109; got != want {
		t.Errorf("len(Departements()) = %d, want %d", got, want)
	}
	if got, want := len(x.Regions()), 26; got != want {
		t.Errorf("len(Regions()) = %d, want %d", got, want)
	}
	if got, want := len(x.EPCIs()), 1255; got != want {
		t.Errorf("len(EPCIs()) = %d, want %d", got, want)
	}
	if first, second := Default(), Default(); first != second {
		t.Error("Default() returned two different indexes")
	}
}

func TestCommune(t *testing.T) {
	x := Default()
	tests := []struct {
		code    string
		wantNom string // "" means not found
		wantDep string
	}{
		{nancy, "Nancy", "54"},
		{ajaccio, "Ajaccio", "2A"},
		{" 2a004 ", "Ajaccio", "2A"},
		{stDie, "Saint-Dié-des-Vosges", "88"},
		{evreux, "Évreux", "27"},
		{abergement, "L'Abergement-Clémenciat", "01"},
		{die, "Die", "26"},
		{saintes, "Saintes", "17"},
		{strasbourg, "Strasbourg", "67"},
		{paris, "Paris", "75"},
		{"97101", "Les Abymes", "971"},
		{"00000", "", ""},
		{"5439", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		c, ok := x.Commune(tt.code)
		if ok != (tt.wantNom != "") || c.Nom != tt.wantNom || c.Departement != tt.wantDep {
			t.Errorf("Commune(%q) = %q (dep %q), %v; want %q (dep %q)", tt.code, c.Nom, c.Departement, ok, tt.wantNom, tt.wantDep)
		}
	}
}

func TestNancyLinks(t *testing.T) {
	x := Default()
	c, ok := x.Commune(nancy)
	if !ok {
		t.Fatal("Nancy not found")
	}
	if !slices.Equal(c.CodesPostaux, []string{"54000", "54100"}) || c.Population <= 0 {
		t.Errorf("Nancy = %+v", c)
	}
	e, ok := x.EPCI(c.EPCI)
	if !ok || !strings.Contains(e.Nom, "Nancy") || e.Type != "METRO" || e.Population < c.Population {
		t.Errorf("EPCI(%q) = %+v, %v; want the Métropole du Grand Nancy", c.EPCI, e, ok)
	}
	if !slices.ContainsFunc(x.CommunesOfEPCI(c.EPCI), func(m Commune) bool { return m.Code == nancy }) {
		t.Errorf("CommunesOfEPCI(%q) lacks Nancy", c.EPCI)
	}
	r, ok := x.Region(c.Region)
	if !ok || r.Nom != "Grand Est" {
		t.Errorf("Region(%q) = %+v, %v; want Grand Est", c.Region, r, ok)
	}
	d, ok := x.Departement(c.Departement)
	if !ok || d.Nom != "Meurthe-et-Moselle" || d.Region != c.Region {
		t.Errorf("Departement(%q) = %+v, %v", c.Departement, d, ok)
	}
}

func TestDepartementRegion(t *testing.T) {
	x := Default()
	tests := []struct {
		code, wantNom, wantRegion string
	}{
		{"971", "Guadeloupe", "01"},
		{"2A", "Corse-du-Sud", "94"},
		{" 2b ", "Haute-Corse", "94"},
		{"01", "Ain", "84"},
		{"976", "Mayotte", "06"},
		{"1", "", ""},
		{"20", "", ""},
	}
	for _, tt := range tests {
		d, ok := x.Departement(tt.code)
		if ok != (tt.wantNom != "") || d.Nom != tt.wantNom || d.Region != tt.wantRegion {
			t.Errorf("Departement(%q) = %+v, %v; want %q in region %q", tt.code, d, ok, tt.wantNom, tt.wantRegion)
		}
	}
	if r, ok := x.Region("01"); !ok || r.Nom != "Guadeloupe" {
		t.Errorf(`Region("01") = %+v, %v`, r, ok)
	}
	if _, ok := x.Region("99"); ok {
		t.Error(`Region("99") found`)
	}
	if _, ok := x.EPCI("000000000"); ok {
		t.Error(`EPCI("000000000") found`)
	}
	deps := x.Departements()
	if !slices.IsSortedFunc(deps, func(a, b Departement) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("Departements() not sorted by code")
	}
}

// TestConsistency checks every link between territories and the sort orders.
func TestConsistency(t *testing.T) {
	x := Default()
	all := x.Communes()
	if len(all) != x.Len() {
		t.Fatalf("len(Communes()) = %d, want %d", len(all), x.Len())
	}
	if !slices.IsSortedFunc(all, func(a, b Commune) int { return strings.Compare(a.Code, b.Code) }) {
		t.Error("Communes() not sorted by code")
	}
	withoutEPCI := 0
	for c := range x.AllCommunes() {
		d, ok := x.Departement(c.Departement)
		if !ok || d.Region != c.Region {
			t.Errorf("commune %s: departement %q = %+v, %v; commune region %q", c.Code, c.Departement, d, ok, c.Region)
		}
		if c.EPCI == "" {
			withoutEPCI++
		} else if _, ok := x.EPCI(c.EPCI); !ok {
			t.Errorf("commune %s: unknown EPCI %q", c.Code, c.EPCI)
		}
		if len(c.CodesPostaux) != cap(c.CodesPostaux) {
			t.Errorf("commune %s: CodesPostaux has spare capacity", c.Code)
		}
	}
	if withoutEPCI == 0 || withoutEPCI > 200 {
		t.Errorf("%d communes without EPCI, want a few", withoutEPCI)
	}
	total := 0
	for _, d := range x.Departements() {
		total += len(x.CommunesOfDepartement(d.Code))
	}
	if total != x.Len() {
		t.Errorf("communes over all départements = %d, want %d", total, x.Len())
	}
	total = 0
	for _, e := range x.EPCIs() {
		total += len(x.CommunesOfEPCI(e.Code))
	}
	if total != x.Len()-withoutEPCI {
		t.Errorf("communes over all EPCI = %d, want %d", total, x.Len()-withoutEPCI)
	}
	// Communes returns a copy.
	all[0].Nom = "changed"
	if c := x.Communes()[0]; c.Nom == "changed" {
		t.Error("Communes() returned the internal slice")
	}
}

func TestCommunesOfDepartement(t *testing.T) {
	x := Default()
	tests := []struct {
		code    string
		wantDep string
		min     int
	}{
		{"54", "54", 500},
		{"2a", "2A", 100},
		{"971", "971", 30},
		{"00", "", 0},
	}
	for _, tt := range tests {
		got := x.CommunesOfDepartement(tt.code)
		if len(got) < tt.min || (tt.min == 0 && got != nil) {
			t.Errorf("CommunesOfDepartement(%q): %d communes, want at least %d", tt.code, len(got), tt.min)
		}
		for _, c := range got {
			if c.Departement != tt.wantDep {
				t.Errorf("CommunesOfDepartement(%q) has %s of departement %q", tt.code, c.Code, c.Departement)
			}
		}
		if !slices.IsSortedFunc(got, func(a, b Commune) int { return strings.Compare(a.Code, b.Code) }) {
			t.Errorf("CommunesOfDepartement(%q) not sorted by code", tt.code)
		}
	}
	if got := x.CommunesOfEPCI("nope"); got != nil {
		t.Errorf(`CommunesOfEPCI("nope") = %d communes`, len(got))
	}
}

func TestByPostalCode(t *testing.T) {
	x := Default()
	tests := []struct {
		cp        string
		wantFirst string // "" means no commune
		min       int
	}{
		{"54000", nancy, 1},
		{" 54100 ", nancy, 1},
		{"75016", paris, 1},
		{"01400", "", 5}, // several communes, checked for order only
		{"99999", "", 0},
		{"", "", 0},
		{"5400", "", 0},
	}
	for _, tt := range tests {
		got := x.ByPostalCode(tt.cp)
		if len(got) < tt.min || (tt.min == 0 && len(got) != 0) {
			t.Errorf("ByPostalCode(%q): %d communes, want at least %d", tt.cp, len(got), tt.min)
			continue
		}
		if tt.wantFirst != "" && got[0].Code != tt.wantFirst {
			t.Errorf("ByPostalCode(%q)[0] = %s %s, want %s", tt.cp, got[0].Code, got[0].Nom, tt.wantFirst)
		}
		for i, c := range got {
			if !slices.Contains(c.CodesPostaux, strings.TrimSpace(tt.cp)) {
				t.Errorf("ByPostalCode(%q) has %s with codes %v", tt.cp, c.Code, c.CodesPostaux)
			}
			if i > 0 && got[i-1].Population < c.Population {
				t.Errorf("ByPostalCode(%q) not sorted by population: %s %d before %s %d",
					tt.cp, got[i-1].Nom, got[i-1].Population, c.Nom, c.Population)
			}
		}
	}
}

func TestSearch(t *testing.T) {
	x := Default()
	tests := []struct {
		query     string
		limit     int
		wantFirst string // code of the first result, "" to skip
		wantHas   string // code somewhere in the results, "" to skip
		wantLacks string // code absent from the results, "" to skip
		wantLen   int    // exact number of results, -1 to skip
	}{
		{"st-die", 0, stDie, "", "", -1},
		{"ST DIÉ", 0, stDie, "", "", -1},
		{"saint-die", 0, stDie, "", "", -1},
		{"Saint-Dié-des-Vosges", 0, stDie, "", "", 1},
		{"st. dié des", 0, stDie, "", "", 1},
		{"nancy", 0, nancy, "", "", -1},
		{"  Nancy  ", 0, nancy, "", "", -1},
		{"évreux", 0, evreux, "", "", -1},
		{"EVREUX", 0, evreux, "", "", -1},
		{"l'abergement", 0, "", abergement, "", -1},
		{"L’Abergement-Clém", 0, abergement, "", "", 1},
		{"die", 0, die, "", "", -1},      // exact name before the bigger Dieppe
		{"vosges", 0, "", stDie, "", -1}, // later word
		{"saint", 0, "", "", strasbourg, -1},
		{"saint", 5000, "", saintes, strasbourg, -1},
		{"saintes", 0, saintes, "", "", -1},
		{"st", 0, strasbourg, "", "", -1}, // the abbreviation as typed is a plain prefix
		{"54395", 0, nancy, "", "", 1},
		{"54000", 0, nancy, "", "", -1},
		{"2a004", 0, ajaccio, "", "", 1},
		{"2A0", 0, ajaccio, "", "", -1},
		{"750", 0, paris, "", "", -1},
		{"a", 5, "", "", "", 5},
		{"a", 0, "", "", "", DefaultSearchLimit},
		{"a", -3, "", "", "", DefaultSearchLimit},
		{"", 0, "", "", "", 0},
		{"   ", 0, "", "", "", 0},
		{"-'’.", 0, "", "", "", 0},
		{"xyzzy", 0, "", "", "", 0},
		{"123456", 0, "", "", "", 0},
	}
	for _, tt := range tests {
		got := x.Search(tt.query, tt.limit)
		codes := make([]string, len(got))
		for i, c := range got {
			codes[i] = c.Code
		}
		shown := codes[:min(len(codes), 25)] // for error messages
		switch {
		case tt.wantLen >= 0 && len(got) != tt.wantLen:
			t.Errorf("Search(%q, %d): %d results %v, want %d", tt.query, tt.limit, len(got), shown, tt.wantLen)
		case tt.wantFirst != "" && (len(got) == 0 || got[0].Code != tt.wantFirst):
			t.Errorf("Search(%q, %d) = %v, want %s first", tt.query, tt.limit, shown, tt.wantFirst)
		case tt.wantHas != "" && !slices.Contains(codes, tt.wantHas):
			t.Errorf("Search(%q, %d) = %v, want it to contain %s", tt.query, tt.limit, shown, tt.wantHas)
		case tt.wantLacks != "" && slices.Contains(codes, tt.wantLacks):
			t.Errorf("Search(%q, %d) = %v, want it without %s", tt.query, tt.limit, shown, tt.wantLacks)
		}
	}
}

// TestSearchRanking checks the tiers: exact name, then names starting with
// the query, then names with a later word starting with it, each by
// population.
func TestSearchRanking(t *testing.T) {
	x := Default()
	for _, query := range []string{"die", "sainte-colombe", "saint-m", "bois", "val"} {
		q := Normalize(query)
		got := x.Search(query, 1000)
		if len(got) == 0 {
			t.Errorf("Search(%q): no result", query)
			continue
		}
		tierOf := func(c Commune) int {
			n := Normalize(c.Nom)
			switch {
			case n == q:
				return 0
			case strings.HasPrefix(n, q):
				return 1
			case strings.Contains(n, " "+q):
				return 2
			}
			t.Errorf("Search(%q) returned %s %q (normalized %q)", query, c.Code, c.Nom, n)
			return 3
		}
		for i := 1; i < len(got); i++ {
			a, b := got[i-1], got[i]
			ta, tb := tierOf(a), tierOf(b)
			if ta > tb || ta == tb && a.Population < b.Population {
				t.Errorf("Search(%q): %q (tier %d, %d inhabitants) before %q (tier %d, %d)",
					query, a.Nom, ta, a.Population, b.Nom, tb, b.Population)
			}
		}
	}
	// "die": Saint-Dié-des-Vosges (second tier) after every name starting with "die".
	got := x.Search("die", 1000)
	i := slices.IndexFunc(got, func(c Commune) bool { return c.Code == stDie })
	if i < 0 {
		t.Fatal(`Search("die") lacks Saint-Dié-des-Vosges`)
	}
	for _, c := range got[i+1:] {
		if strings.HasPrefix(Normalize(c.Nom), "die") {
			t.Errorf(`Search("die"): %q after Saint-Dié-des-Vosges`, c.Nom)
		}
	}
	// "sain": the Saint-… communes, the most populated first.
	if got := x.Search("sain", 3); len(got) == 0 || !strings.HasPrefix(got[0].Nom, "Saint-") {
		t.Errorf(`Search("sain", 3) = %v, want a Saint-… commune first`, got)
	}
}

// TestSearchMatchesScan compares Search, which uses the word index, with a
// plain scan of every commune implementing the documented ranking.
func TestSearchMatchesScan(t *testing.T) {
	x := Default()
	queries := []string{
		"a", "e", "l", "s", "z", "sa", "sai", "sain", "saint", "sainte", "saintes", "st", "ste", "st-", "de", "des",
		"le", "la", "sur", "die", "saint-die", "st-m", "saint jean", "sainte-m", "l'", "l ab", "y", "ile", "oe",
		"2", "2a", "2B0", "0", "01", "540", "54000", "97", "975", "97500", "98", "75116", "13", "00000",
	}
	for i := 0; i < x.Len(); i += 997 {
		nom := x.communes[i].Nom
		for _, n := range []int{1, 2, 3, 5, 8, len(nom)} {
			if n <= len(nom) {
				queries = append(queries, nom[:n]) // may cut a UTF-8 sequence: fine
			}
		}
		if _, rest, ok := strings.Cut(nom, "-"); ok {
			queries = append(queries, rest)
		}
	}
	names := make([]string, x.Len())
	for i, c := range x.communes {
		names[i] = Normalize(c.Nom)
	}
	for _, q := range queries {
		got := x.Search(q, 1<<20)
		want := scanSearch(x, names, q)
		if !slices.EqualFunc(got, want, func(a, b Commune) bool { return a.Code == b.Code }) {
			t.Errorf("Search(%q): %d results, scan: %d; first differences: %v", q, len(got), len(want), firstDiff(got, want))
		}
		if len(want) > 3 {
			if got := x.Search(q, 3); !slices.EqualFunc(got, want[:3], func(a, b Commune) bool { return a.Code == b.Code }) {
				t.Errorf("Search(%q, 3) = %v, want %v", q, codesOf(got), codesOf(want[:3]))
			}
		}
	}
}

// scanSearch is Search done the slow way; names are the normalized names of
// x's communes.
func scanSearch(x *Index, names []string, query string) []Commune {
	type ranked struct {
		c    Commune
		tier int
	}
	var hits []ranked
	query = strings.TrimSpace(query)
	if query == "" {
		return nil
	}
	if isCodeQuery(query) {
		q := strings.ToUpper(query)
		for _, c := range x.communes {
			tier := 3
			if c.Code == q || slices.Contains(c.CodesPostaux, q) {
				tier = 0
			} else if strings.HasPrefix(c.Code, q) || slices.ContainsFunc(c.CodesPostaux, func(cp string) bool { return strings.HasPrefix(cp, q) }) {
				tier = 1
			}
			if tier < 3 {
				hits = append(hits, ranked{c, tier})
			}
		}
	} else {
		full := Normalize(query)
		if full == "" {
			return nil
		}
		forms, n := nameForms(full, string(appendNormalized(nil, query, false)))
		for i, c := range x.communes {
			name := names[i]
			text := name + "\n"
			tier := 3
			if name == full {
				tier = 0
			}
			for _, f := range forms[:n] {
				if f.matchAt(text, 0) {
					tier = min(tier, 1)
				}
				for j := range len(name) {
					if name[j] == ' ' && f.matchAt(text, j+1) {
						tier = min(tier, 2)
					}
				}
			}
			if tier < 3 {
				hits = append(hits, ranked{c, tier})
			}
		}
	}
	slices.SortFunc(hits, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(b.c.Population, a.c.Population), strings.Compare(a.c.Code, b.c.Code))
	})
	out := make([]Commune, len(hits))
	for i, h := range hits {
		out[i] = h.c
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func codesOf(cs []Commune) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Code + " " + c.Nom
	}
	return out
}

func firstDiff(got, want []Commune) string {
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i].Code + " " + got[i].Nom
		}
		if i < len(want) {
			w = want[i].Code + " " + want[i].Nom
		}
		if g != w {
			return fmt.Sprintf("at %d: got %q, want %q", i, g, w)
		}
	}
	return "none"
}

// TestLoadCorrupt swaps the embedded data for broken tables and checks
// Load's errors.
func TestLoadCorrupt(t *testing.T) {
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	const (
		h   = communesHeader + "\n"
		row = "54395;Nancy;54;44;245400676;54000 54100;103671\n"
	)
	tests := []struct {
		name    string
		table   *string
		data    string
		wantErr string
	}{
		{"not gzip", &communesGz, "plain text", "territoire: reading communes: gzip: invalid header"},
		{"truncated gzip", &communesGz, gz(h + row)[:30], "territoire: reading communes:"},
		{"header", &communesGz, gz("code;nom\n" + row), "territoire: parsing communes line 1: header"},
		{"few fields", &communesGz, gz(h + row + "54396;Nowhere;54;44\n"), "territoire: parsing communes line 3: 4 fields, want 7"},
		{"many fields", &communesGz, gz(h + "54396;Nowhere;54;44;;54000;1;x\n"), "territoire: parsing communes line 2: 8 fields, want 7"},
		{"population", &communesGz, gz(h + "54396;Nowhere;54;44;;54000;many\n"), `territoire: parsing communes line 2: commune 54396: population: strconv.Atoi: parsing "many": invalid syntax`},
		{"departement", &communesGz, gz(h + "54396;Nowhere;00;44;;54000;1\n"), `territoire: parsing communes line 2: commune 54396: unknown departement "00"`},
		{"region", &communesGz, gz(h + "54396;Nowhere;54;00;;54000;1\n"), `unknown region "00"`},
		{"epci", &communesGz, gz(h + "54396;Nowhere;54;44;123;54000;1\n"), `unknown EPCI "123"`},
		{"postal code", &communesGz, gz(h + "54396;Nowhere;54;44;;5400;1\n"), `postal code "5400" is not 5 digits`},
		{"code", &communesGz, gz(h + "5439;Nowhere;54;44;;54000;1\n"), `commune code "5439" is not 5 characters`},
		{"duplicate", &communesGz, gz(h + row + row), `territoire: parsing communes: duplicate code "54395"`},
		{"epci population", &epciGz, gz(epciHeader + "\n245400676;Grand Nancy;METRO;-1\n"), "territoire: parsing epci line 2: population: negative"},
		{"departement region", &departementsGz, gz(departementsHeader + "\n54;Meurthe-et-Moselle;00\n"), `territoire: parsing departements line 2: unknown region "00"`},
		{"duplicate region", &regionsGz, gz(regionsHeader + "\r\n44;Grand Est\r\n44;Grand Est\r\n"), `territoire: parsing regions: duplicate code "44"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := *tt.table
			t.Cleanup(func() { *tt.table = saved })
			*tt.table = tt.data
			x, err := Load()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load() = %v, %v; want error containing %q", x != nil, err, tt.wantErr)
			}
		})
	}
}

func TestSearchAllocs(t *testing.T) {
	x := Default()
	for _, q := range []string{"st-die", "a", "saint", "54"} {
		if n := testing.AllocsPerRun(20, func() { x.Search(q, 20) }); n > 12 {
			t.Errorf("Search(%q) makes %v allocations, want a handful", q, n)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			x := Default()
			if got := x.Search("nancy", 1); len(got) != 1 || got[0].Code != nancy {
				t.Errorf("Search(nancy) = %v", got)
			}
			if _, ok := x.Commune(ajaccio); !ok {
				t.Error("Ajaccio not found")
			}
		})
	}
	wg.Wait()
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"Saint-Dié-des-Vosges", "st die des vosges"},
		{"St-Dié", "st die"},
		{"ST. DIÉ", "st die"},
		{"Sainte-Marie-aux-Mines", "ste marie aux mines"},
		{"SAINTE", "ste"},
		{"saint", "st"},
		{"Saintes", "saintes"},
		{"Lieusaint", "lieusaint"},
		{"Saints-Geosmes", "saints geosmes"},
		{"L'Abergement-Clémenciat", "l abergement clemenciat"},
		{"L’Haÿ-les-Roses", "l hay les roses"},
		{"Œuilly", "oeuilly"},
		{"Cœuvres-et-Valsery", "coeuvres et valsery"},
		{"Lætitia", "laetitia"},
		{"ÉVREUX", "evreux"},
		{"Évreux", "evreux"},
		{"Ça-Çà", "ca ca"},
		{"Îles Éparses de l'océan Indien", "iles eparses de l ocean indien"},
		{"  Château-Chinon (Ville)  ", "chateau chinon ville"},
		{"a--b  ''c..d", "a b c d"},
		{"E\u0301vreux", "evreux"}, // decomposed accent
		{"Straße", "strasse"},
		{"Ærø", "aero"},
		{"Κρήτη", "κρήτη"}, // other scripts: lower-cased, kept
		{"97101", "97101"},
		{"", ""},
		{" -’' ", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := AppendNormalized([]byte("x"), []byte(tt.in)); string(got) != "x"+tt.want {
			t.Errorf("AppendNormalized(%q) = %q, want %q", tt.in, got, "x"+tt.want)
		}
	}
	// Broken UTF-8 folds the same from bytes as from a string.
	for _, in := range []string{"a\xffb", "Hél\xe2\x82", "\xf0\x9f\x98\x80x", "\xc3"} {
		if got, want := string(AppendNormalized(nil, []byte(in))), Normalize(in); got != want {
			t.Errorf("AppendNormalized(%q) = %q, Normalize gives %q", in, got, want)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSearch(b *testing.B) {
	x := Default()
	for _, q := range []string{"st-die", "nancy", "sain", "a", "54"} {
		b.Run(q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				x.Search(q, 20)
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Normalize("Saint-Dié-des-Vosges")
	}
}
