package contours

import (
	"math"
	"slices"
	"strings"
	"testing"

	"numeribus/internal/territoire"
)

// The communes of the 101 départements that have no outline: created or
// re-established since 2018, their land drawn inside the commune they
// left (data/README.md).
var missingInDepartements = []string{"14666", "15031", "15035", "15047", "15171", "85165", "85212"}

// Every current commune of every département has an outline or is listed
// by Missing; every outline belongs to a current commune.
func TestEveryCommuneHasAnOutlineOrIsMissing(t *testing.T) {
	s, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	x := territoire.Default()
	if got, want := s.Len(), 34868; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	var missing []string
	total := 0
	for _, d := range x.Departements() {
		cs := x.CommunesOfDepartement(d.Code)
		m := s.Missing(cs)
		for _, c := range cs {
			_, has := s.Outline(c.Code)
			if has == slices.ContainsFunc(m, func(mc territoire.Commune) bool { return mc.Code == c.Code }) {
				t.Errorf("%s %s: outline %v, and listed missing as well, or neither", c.Code, c.Nom, has)
			}
			total++
		}
		if d.Code < "975" || d.Code == "976" { // the 101 départements
			for _, c := range m {
				missing = append(missing, c.Code)
			}
		} else if len(m) != len(cs) {
			t.Errorf("collectivity %s: %d of %d communes have an outline, want none", d.Code, len(cs)-len(m), len(cs))
		}
	}
	if !slices.Equal(missing, missingInDepartements) {
		t.Errorf("communes of départements without an outline: %v, want %v", missing, missingInDepartements)
	}
	if total != x.Len() {
		t.Errorf("départements hold %d communes, the index %d", total, x.Len())
	}
	for _, o := range s.outlines {
		if _, ok := x.Commune(o.Code); !ok {
			t.Errorf("outline of %s, not a current commune", o.Code)
		}
	}
}

// A few communes: where they are, and communes nouvelles drawn from the
// outlines of the communes they absorbed.
func TestOutlines(t *testing.T) {
	s := Default()
	tests := []struct {
		code     string
		lat, lon float64 // centroid, within 0.05°
		minRings int
	}{
		{"54395", 48.69, 6.18, 1},   // Nancy
		{"2A004", 41.93, 8.70, 1},   // Ajaccio
		{"97411", -20.93, 55.45, 1}, // Saint-Denis (La Réunion)
		// Conques-en-Rouergue: a commune nouvelle of 2016 whose code
		// changed since 2018 (12076 then): drawn from its old outline.
		{"12218", 44.56, 2.40, 1},
		// Saint-Sauveur-Villages (2019): its own 2018 outline and the
		// six communes it absorbed since.
		{"50550", 49.13, -1.41, 7},
	}
	for _, tt := range tests {
		o, ok := s.Outline(tt.code)
		if !ok {
			t.Errorf("%s: no outline", tt.code)
			continue
		}
		if math.Abs(o.Lat-tt.lat) > 0.05 || math.Abs(o.Lon-tt.lon) > 0.05 {
			t.Errorf("%s: centroid %.3f, %.3f, want about %.2f, %.2f", tt.code, o.Lat, o.Lon, tt.lat, tt.lon)
		}
		if len(o.Rings) < tt.minRings {
			t.Errorf("%s: %d rings, want at least %d", tt.code, len(o.Rings), tt.minRings)
		}
		sc := int32(s.Scale())
		if o.Min.X > int32(tt.lon*float64(sc)) || o.Max.X < int32(tt.lon*float64(sc)) || o.Min.Y > int32(tt.lat*float64(sc)) || o.Max.Y < int32(tt.lat*float64(sc)) {
			t.Errorf("%s: box %v–%v misses the centroid", tt.code, o.Min, o.Max)
		}
	}
	if _, ok := s.Outline("14666"); ok {
		t.Error("Sannerville (re-established in 2023) has an outline")
	}
}

// Neighbours share their border points exactly: Nancy and
// Vandœuvre-lès-Nancy, so that a map can draw borders between them once.
func TestNeighboursShareBorderPoints(t *testing.T) {
	s := Default()
	a, _ := s.Outline("54395")
	b, _ := s.Outline("54547")
	in := map[Point]bool{}
	for _, r := range a.Rings {
		for _, p := range r.Pts {
			in[p] = true
		}
	}
	shared := 0
	for _, r := range b.Rings {
		for _, p := range r.Pts {
			if in[p] {
				shared++
			}
		}
	}
	if shared < 5 {
		t.Errorf("Nancy and Vandœuvre share %d border points, want a border", shared)
	}
}

func TestCorruptDataRefused(t *testing.T) {
	for name, raw := range map[string]string{
		"no header": "hello",
		"truncated": magic + "\x88\x27\x01" + "54395",
		"trailing":  magic + "\x88\x27\x00" + "x",
	} {
		if _, err := decode([]byte(raw)); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: err = %v, want corrupt", name, err)
		}
	}
}
