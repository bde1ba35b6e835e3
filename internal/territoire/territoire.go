package territoire

import (
	"cmp"
	"iter"
	"slices"
	"strings"
	"sync"
)

// Commune is a current French commune (commune actuelle).
//
// Communes returned by an [Index] share their CodesPostaux backing array with
// the index: read it, do not modify its elements.
type Commune struct {
	Code         string   // INSEE code, 5 characters, e.g. "54395", "2A004"
	Nom          string   // official name, e.g. "Saint-Dié-des-Vosges"
	Departement  string   // département code, e.g. "54", "2A", "971"
	Region       string   // région code, e.g. "44"; for the overseas collectivities it equals the département code
	EPCI         string   // SIREN of the EPCI the commune belongs to, "" for the few outside any EPCI
	CodesPostaux []string // postal codes, most communes have one; none for some uninhabited territories
	Population   int      // population of the data release; 0 when unknown or uninhabited
}

// EPCI is an établissement public de coopération intercommunale à fiscalité
// propre (communauté de communes, d'agglomération, urbaine, or métropole).
type EPCI struct {
	Code       string // SIREN, 9 digits
	Nom        string // name, e.g. "Métropole du Grand Nancy"
	Type       string // "CC", "CA", "CU", "METRO" or "MET69" (Métropole de Lyon)
	Population int    // as published for the EPCI: close to, not always equal to, the sum over its communes
}

// Departement is a French département (or overseas collectivity).
type Departement struct {
	Code   string // "01" … "95", "2A", "2B", "971" …
	Nom    string // name, e.g. "Meurthe-et-Moselle"
	Region string // code of its région
}

// Region is a French région (or overseas collectivity).
type Region struct {
	Code string // INSEE code, e.g. "44"
	Nom  string // name, e.g. "Grand Est"
}

// Index holds every territory. It is read-only after [Load] and safe for
// concurrent use. Methods returning slices return fresh slices the caller
// owns (apart from [Commune.CodesPostaux], shared with the index).
type Index struct {
	communes []Commune // sorted by Code
	epcis    []EPCI    // sorted by Code
	deps     []Departement
	regions  []Region
	byDep    group // members of deps[i]
	byEPCI   group // members of epcis[i]
	postal   []postalEntry
	names    nameIndex
}

// group lists, for each key i of a sorted key slice, the indexes into
// Index.communes of its members: idx[off[i]:off[i+1]], in code order.
type group struct {
	off []int32
	idx []int32
}

// postalEntry is one (postal code, commune) pair. Index.postal is sorted by
// postal code, then population descending, then INSEE code. Postal codes are
// 5 digits (checked at load), kept as a number.
type postalEntry struct {
	cp uint32
	i  int32 // index in Index.communes
}

var defaultIndex = sync.OnceValue(func() *Index {
	x, err := Load()
	if err != nil {
		// The data is compiled in and covered by the tests: failing to
		// parse it is a build defect, not a run-time condition.
		panic(err)
	}
	return x
})

// Default returns the index built from the embedded data, loaded once on
// first use (about 20 ms; the index keeps about 8 MB) and shared afterwards.
// It panics if the embedded data is corrupt, which the package tests rule
// out; call [Load] to get an error instead.
func Default() *Index { return defaultIndex() }

// Len returns the number of communes.
func (x *Index) Len() int { return len(x.communes) }

// Commune returns the commune with the given INSEE code. Surrounding spaces
// are ignored and Corsican codes are accepted in lower case ("2a004").
func (x *Index) Commune(code string) (Commune, bool) {
	i, ok := x.communeIndex(cleanCode(code))
	if !ok {
		return Commune{}, false
	}
	return x.communes[i], true
}

func (x *Index) communeIndex(code string) (int, bool) {
	return slices.BinarySearchFunc(x.communes, code, func(c Commune, code string) int {
		return strings.Compare(c.Code, code)
	})
}

// ByPostalCode returns the communes served by postal code cp (spaces around
// it ignored), most populated first; nil if there is none.
func (x *Index) ByPostalCode(cp string) []Commune {
	n, ok := parsePostalCode(strings.TrimSpace(cp))
	if !ok {
		return nil
	}
	var out []Commune
	for _, e := range x.postalRange(n, n+1) {
		out = append(out, x.communes[e.i])
	}
	return out
}

// postalRange returns the entries whose postal code is in [lo, hi).
func (x *Index) postalRange(lo, hi uint32) []postalEntry {
	i, _ := slices.BinarySearchFunc(x.postal, lo, func(e postalEntry, cp uint32) int { return cmp.Compare(e.cp, cp) })
	j, _ := slices.BinarySearchFunc(x.postal[i:], hi, func(e postalEntry, cp uint32) int { return cmp.Compare(e.cp, cp) })
	return x.postal[i : i+j]
}

// parsePostalCode reads a 5-digit postal code.
func parsePostalCode(s string) (uint32, bool) {
	if len(s) != 5 {
		return 0, false
	}
	n := uint32(0)
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + uint32(s[i]-'0')
	}
	return n, true
}

// EPCI returns the EPCI with the given SIREN (spaces around it ignored).
func (x *Index) EPCI(code string) (EPCI, bool) {
	i, ok := x.epciIndex(strings.TrimSpace(code))
	if !ok {
		return EPCI{}, false
	}
	return x.epcis[i], true
}

func (x *Index) epciIndex(code string) (int, bool) {
	return slices.BinarySearchFunc(x.epcis, code, func(e EPCI, code string) int {
		return strings.Compare(e.Code, code)
	})
}

// Departement returns the département with the given code (spaces around it
// ignored, "2a" accepted as "2A").
func (x *Index) Departement(code string) (Departement, bool) {
	i, ok := x.depIndex(cleanCode(code))
	if !ok {
		return Departement{}, false
	}
	return x.deps[i], true
}

func (x *Index) depIndex(code string) (int, bool) {
	return slices.BinarySearchFunc(x.deps, code, func(d Departement, code string) int {
		return strings.Compare(d.Code, code)
	})
}

// Region returns the région with the given code (spaces around it ignored).
func (x *Index) Region(code string) (Region, bool) {
	code = strings.TrimSpace(code)
	i, ok := slices.BinarySearchFunc(x.regions, code, func(r Region, code string) int {
		return strings.Compare(r.Code, code)
	})
	if !ok {
		return Region{}, false
	}
	return x.regions[i], true
}

// Communes returns a copy of all communes, sorted by INSEE code. The copy
// costs about 4 MB; use [Index.AllCommunes] to iterate without copying.
func (x *Index) Communes() []Commune { return slices.Clone(x.communes) }

// AllCommunes iterates over all communes in INSEE code order, without
// copying the list.
func (x *Index) AllCommunes() iter.Seq[Commune] {
	return func(yield func(Commune) bool) {
		for _, c := range x.communes {
			if !yield(c) {
				return
			}
		}
	}
}

// CommunesOfDepartement returns the communes of a département (code as for
// [Index.Departement]) sorted by INSEE code; nil for an unknown département.
func (x *Index) CommunesOfDepartement(code string) []Commune {
	i, ok := x.depIndex(cleanCode(code))
	if !ok {
		return nil
	}
	return x.members(x.byDep, i)
}

// CommunesOfEPCI returns the member communes of an EPCI sorted by INSEE code;
// nil for an unknown EPCI.
func (x *Index) CommunesOfEPCI(code string) []Commune {
	i, ok := x.epciIndex(strings.TrimSpace(code))
	if !ok {
		return nil
	}
	return x.members(x.byEPCI, i)
}

func (x *Index) members(g group, i int) []Commune {
	idx := g.idx[g.off[i]:g.off[i+1]]
	out := make([]Commune, len(idx))
	for k, j := range idx {
		out[k] = x.communes[j]
	}
	return out
}

// Departements returns all départements sorted by code (byte order: "01" …
// "19", "21" … "29", "2A", "2B", "30" … "95", "971" …).
func (x *Index) Departements() []Departement { return slices.Clone(x.deps) }

// EPCIs returns all EPCI sorted by SIREN.
func (x *Index) EPCIs() []EPCI { return slices.Clone(x.epcis) }

// Regions returns all régions sorted by code.
func (x *Index) Regions() []Region { return slices.Clone(x.regions) }

// cleanCode trims spaces and upper-cases a commune or département code, so
// that "2a004" reads as "2A004". It does not allocate for a clean code.
func cleanCode(code string) string {
	return strings.ToUpper(strings.TrimSpace(code))
}
