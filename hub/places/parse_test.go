package places

import (
	"os"
	"strings"
	"testing"

	"numeribus/internal/apperr"
	"numeribus/internal/territoire"
)

func parseFile(t *testing.T, name string) (*Parsed, error) {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return Parse(f, territoire.Default())
}

// The three fixtures, each in the shape its producer publishes: the
// format is recognised, every place gets its current commune (from the
// INSEE code, or the postal code and the name), coordinates are read
// with a point or a comma, and a line without a known commune is
// skipped and named.
func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file         string
		format       Format
		want         map[string]string // ref → commune
		coords       map[string]bool   // ref → has coordinates
		skippedLines []int
	}{
		{"structures-data-inclusion.csv", DataInclusionCSV,
			map[string]string{"dora:5b0f6c1e-27a4-4c39-9b0e-1f0e1b6f2a11": "54329", "dora:8d2c1a90-4b7e-4f5f-a3a1-2e6c0c8b9d02": "54431",
				"mediation-numerique:toul-epn-1": "54528", "soliguide:sg-88-412": "88413", "dora:0a9e3b5c-6f7d-4e21-8c4b-5d6e7f8a9b10": "88160"},
			map[string]bool{"dora:5b0f6c1e-27a4-4c39-9b0e-1f0e1b6f2a11": true, "mediation-numerique:toul-epn-1": false, "dora:0a9e3b5c-6f7d-4e21-8c4b-5d6e7f8a9b10": true},
			[]int{7}},
		{"structures-data-inclusion.json", DataInclusionJSON,
			map[string]string{"dora:5b0f6c1e-27a4-4c39-9b0e-1f0e1b6f2a11": "54329", "mediation-numerique:toul-epn-1": "54528", "soliguide:sg-88-412": "88413"},
			map[string]bool{"dora:5b0f6c1e-27a4-4c39-9b0e-1f0e1b6f2a11": true, "mediation-numerique:toul-epn-1": false, "soliguide:sg-88-412": true},
			nil},
		{"lieux-mediation-numerique.csv", LieuxCSV,
			map[string]string{"lieu-54-0001": "54395", "lieu-54-0002": "54039", "lieu-88-0001": "88383"},
			map[string]bool{"lieu-54-0001": true, "lieu-88-0001": false},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := parseFile(t, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if p.Format != tt.format {
				t.Errorf("format %s, want %s", p.Format, tt.format)
			}
			got := map[string]Place{}
			for _, pl := range p.Places {
				got[pl.Ref] = pl
			}
			if len(got) != len(tt.want) {
				t.Errorf("%d places, want %d: %+v", len(got), len(tt.want), p.Places)
			}
			for ref, commune := range tt.want {
				if got[ref].Commune != commune {
					t.Errorf("%s: commune %q, want %s", ref, got[ref].Commune, commune)
				}
				if got[ref].Nom == "" {
					t.Errorf("%s: no name", ref)
				}
			}
			for ref, has := range tt.coords {
				if got[ref].HasCoords != has {
					t.Errorf("%s: coordinates %v, want %v", ref, got[ref].HasCoords, has)
				}
			}
			if p.Skipped != len(tt.skippedLines) || joinInts(p.SkippedLines) != joinInts(tt.skippedLines) {
				t.Errorf("skipped %d at %v, want %v", p.Skipped, p.SkippedLines, tt.skippedLines)
			}
		})
	}
	p, _ := parseFile(t, "structures-data-inclusion.csv")
	for _, pl := range p.Places {
		if pl.Ref == "dora:0a9e3b5c-6f7d-4e21-8c4b-5d6e7f8a9b10" && (pl.Lat != 48.17352 || pl.Lon != 6.45126) {
			t.Errorf("coordinates with a comma: %v, %v", pl.Lat, pl.Lon)
		}
	}
}

// A wrong file is refused whole, with a French message that says what
// was expected; nothing is returned to store.
func TestParseRefusesWrongFiles(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"an activity export", "", "ni une liste de structures data·inclusion ni une liste de lieux"},
		{"empty", "  \n", "vide"},
		{"a spreadsheet", "PK\x03\x04\x14\x00\x06\x00", "classeur"},
		{"Latin-1", "nom;code_insee\nMairie de Vand\xf4uvre;54547\n", "UTF-8"},
		{"JSON without a list", `{"type": "FeatureCollection", "name": "x"}`, "ne contient pas de liste"},
		{"JSON cut short", `[{"nom": "Mairie", "code_insee": "54395"}, {"nom": `, "Structure n° 2 illisible"},
		{"JSON of something else", `[{"date": "2026-03-03", "type": "individuel"}]`, "ni « nom » ni « code_insee »"},
		{"header only", "id,nom,code_insee\n", "aucun lieu"},
		{"mostly unknown communes", "id,nom,code_insee\n1,A,99999\n2,B,99998\n3,C,54395\n", "2 lieux sur 3 n'ont pas de commune reconnue"},
		{"a stray quote", "id,nom,code_insee\n1,Espace \"Le Lien,54395\n2,B,54395\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				p   *Parsed
				err error
			)
			if tt.name == "an activity export" {
				p, err = parseFile(t, "pas-une-liste.csv")
			} else {
				p, err = Parse(strings.NewReader(tt.content), territoire.Default())
			}
			if tt.want == "" { // lazy quotes: read, not refused
				if err != nil || len(p.Places) != 2 {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if apperr.CodeOf(err) != apperr.Invalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q (%s), want %q", err, apperr.CodeOf(err), tt.want)
			}
		})
	}
}

func TestCommuneOf(t *testing.T) {
	x := territoire.Default()
	tests := []struct {
		insee, cp, nom, want string
	}{
		{"54395", "", "", "54395"},
		{"1053", "", "", "01053"}, // a spreadsheet dropped the zero
		{"75111", "75011", "Paris", "75056"},
		{"69383", "", "", "69123"},
		{"13208", "", "", "13055"},
		{"", "88100", "Saint-Dié-des-Vosges", "88413"},
		{"", "88100", "saint die des vosges", "88413"},
		{"", "54450", "Blamont", "54077"},
		{"99999", "99999", "Nulle-Part", ""},
		{"", "88100", "", ""}, // several communes share it
	}
	for _, tt := range tests {
		got, ok := CommuneOf(x, tt.insee, tt.cp, tt.nom)
		if got != tt.want || ok != (tt.want != "") {
			t.Errorf("CommuneOf(%q, %q, %q) = %q, %v, want %q", tt.insee, tt.cp, tt.nom, got, ok, tt.want)
		}
	}
}
