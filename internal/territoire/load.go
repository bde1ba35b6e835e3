package territoire

import (
	"compress/gzip"
	_ "embed" // for //go:embed
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The embedded data: gzip -9 of semicolon-separated UTF-8 CSV files with a
// header line (see data/README.md).
var (
	//go:embed data/communes.csv.gz
	communesGz string
	//go:embed data/epci.csv.gz
	epciGz string
	//go:embed data/departements.csv.gz
	departementsGz string
	//go:embed data/regions.csv.gz
	regionsGz string
)

// Expected header lines; the parser relies on this column order.
const (
	communesHeader     = "code_insee;nom;departement;region;epci;codes_postaux;population"
	epciHeader         = "code_siren;nom;type;population"
	departementsHeader = "code;nom;region"
	regionsHeader      = "code;nom"
)

// maxUncompressed bounds the buffer preallocated from a gzip trailer.
const maxUncompressed = 64 << 20

// Load parses the embedded data into a new [Index]. [Default] calls it once
// and shares the result; call Load directly only to get an error instead of
// a panic, or an index of your own. It returns an error if the data is
// corrupt: bad gzip, wrong header or field count, bad number, empty or
// duplicate code, or a reference to an unknown territory.
func Load() (*Index, error) {
	x := &Index{}
	var err error
	if x.regions, err = parseRegions(); err != nil {
		return nil, err
	}
	if x.deps, err = parseDepartements(x.regions); err != nil {
		return nil, err
	}
	if x.epcis, err = parseEPCI(); err != nil {
		return nil, err
	}
	if err = x.parseCommunes(); err != nil {
		return nil, err
	}
	return x, nil
}

func parseRegions() ([]Region, error) {
	r, err := newRecords("regions", regionsGz, regionsHeader)
	if err != nil {
		return nil, err
	}
	var f [2]string
	out := make([]Region, 0, 32)
	for {
		ok, err := r.next(f[:])
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if f[0] == "" || f[1] == "" {
			return nil, r.errorf("empty code or name")
		}
		out = append(out, Region{Code: f[0], Nom: f[1]})
	}
	return sortUnique("regions", out, func(r Region) string { return r.Code })
}

func parseDepartements(regions []Region) ([]Departement, error) {
	r, err := newRecords("departements", departementsGz, departementsHeader)
	if err != nil {
		return nil, err
	}
	var f [3]string
	out := make([]Departement, 0, 128)
	for {
		ok, err := r.next(f[:])
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if f[0] == "" || f[1] == "" {
			return nil, r.errorf("empty code or name")
		}
		if _, ok := slices.BinarySearchFunc(regions, f[2], func(r Region, code string) int {
			return strings.Compare(r.Code, code)
		}); !ok {
			return nil, r.errorf("unknown region %q", f[2])
		}
		out = append(out, Departement{Code: f[0], Nom: f[1], Region: f[2]})
	}
	return sortUnique("departements", out, func(d Departement) string { return d.Code })
}

func parseEPCI() ([]EPCI, error) {
	r, err := newRecords("epci", epciGz, epciHeader)
	if err != nil {
		return nil, err
	}
	var f [4]string
	out := make([]EPCI, 0, r.lines())
	for {
		ok, err := r.next(f[:])
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if f[0] == "" || f[1] == "" {
			return nil, r.errorf("empty code or name")
		}
		pop, err := parsePopulation(f[3])
		if err != nil {
			return nil, r.errorf("population: %w", err)
		}
		out = append(out, EPCI{Code: f[0], Nom: f[1], Type: f[2], Population: pop})
	}
	return sortUnique("epci", out, func(e EPCI) string { return e.Code })
}

// parseCommunes fills x.communes and every commune index; x.regions,
// x.deps and x.epcis must be loaded.
func (x *Index) parseCommunes() error {
	r, err := newRecords("communes", communesGz, communesHeader)
	if err != nil {
		return err
	}
	n := r.lines()
	communes := make([]Commune, 0, n)
	depOf := make([]int32, 0, n)  // index in x.deps
	epciOf := make([]int32, 0, n) // index in x.epcis, -1 for none
	cpEnd := make([]int32, 0, n)  // end of the commune's codes in cps
	cps := make([]string, 0, n+n/16)
	namesLen := 0
	epciAt := make(map[string]int32, len(x.epcis))
	for i, e := range x.epcis {
		epciAt[e.Code] = int32(i)
	}

	// Consecutive communes mostly share département and région: remember
	// the last ones looked up.
	lastDep, lastRegion := -1, ""
	var f [7]string
	for {
		ok, err := r.next(f[:])
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		c := Commune{Code: f[0], Nom: f[1], Departement: f[2], Region: f[3], EPCI: f[4]}
		if len(c.Code) != 5 {
			return r.errorf("commune code %q is not 5 characters", c.Code)
		}
		if c.Nom == "" {
			return r.errorf("commune %s has no name", c.Code)
		}
		if lastDep < 0 || x.deps[lastDep].Code != c.Departement {
			i, ok := x.depIndex(c.Departement)
			if !ok {
				return r.errorf("commune %s: unknown departement %q", c.Code, c.Departement)
			}
			lastDep = i
		}
		if c.Region != lastRegion {
			if _, ok := x.Region(c.Region); !ok || c.Region == "" {
				return r.errorf("commune %s: unknown region %q", c.Code, c.Region)
			}
			lastRegion = c.Region
		}
		epci := int32(-1)
		if c.EPCI != "" {
			i, ok := epciAt[c.EPCI]
			if !ok {
				return r.errorf("commune %s: unknown EPCI %q", c.Code, c.EPCI)
			}
			epci = i
		}
		for s := f[5]; s != ""; {
			var cp string
			cp, s, _ = strings.Cut(s, " ")
			if cp == "" {
				continue
			}
			if _, ok := parsePostalCode(cp); !ok {
				return r.errorf("commune %s: postal code %q is not 5 digits", c.Code, cp)
			}
			cps = append(cps, cp)
		}
		if c.Population, err = parsePopulation(f[6]); err != nil {
			return r.errorf("commune %s: population: %w", c.Code, err)
		}
		communes = append(communes, c)
		depOf = append(depOf, int32(lastDep))
		epciOf = append(epciOf, epci)
		cpEnd = append(cpEnd, int32(len(cps)))
		namesLen += len(c.Nom)
	}

	// Only now is the postal code array final; cap each commune's slice so
	// that an append by a caller cannot overwrite the next commune's codes.
	start := int32(0)
	for i, end := range cpEnd {
		if end > start {
			communes[i].CodesPostaux = cps[start:end:end]
		}
		start = end
	}

	// The file is nearly sorted by code (only a few overseas communes are
	// out of order): sort in place, with the parallel indexes.
	s := communeSorter{communes, depOf, epciOf}
	if !sort.IsSorted(s) {
		sort.Sort(s)
	}
	for i := 1; i < len(communes); i++ {
		if communes[i].Code == communes[i-1].Code {
			return fmt.Errorf("territoire: parsing communes: duplicate code %q", communes[i].Code)
		}
	}
	if len(communes) >= 1<<20 {
		return fmt.Errorf("territoire: parsing communes: %d communes, the postal index holds at most %d", len(communes), 1<<20-1)
	}
	x.communes = communes
	x.byDep = buildGroup(len(x.deps), depOf)
	x.byEPCI = buildGroup(len(x.epcis), epciOf)
	x.names = newNameIndex(communes, namesLen)
	x.postal = newPostalIndex(communes, len(cps))
	return nil
}

// newPostalIndex lists the (postal code, commune) pairs by postal code, then
// population descending, then INSEE code. It sorts packed integer keys:
// postal code (17 bits), population complement (24 bits, larger populations
// tie, in code order), commune index (20 bits).
func newPostalIndex(communes []Commune, n int) []postalEntry {
	const (
		popBits   = 24
		indexBits = 20
		maxPop    = 1<<popBits - 1
	)
	keys := make([]uint64, 0, n)
	for i := range communes {
		pop := uint64(min(communes[i].Population, maxPop))
		for _, cp := range communes[i].CodesPostaux {
			num, _ := parsePostalCode(cp) // checked while parsing
			keys = append(keys, uint64(num)<<(popBits+indexBits)|(maxPop-pop)<<indexBits|uint64(i))
		}
	}
	slices.Sort(keys)
	out := make([]postalEntry, len(keys))
	for k, key := range keys {
		out[k] = postalEntry{cp: uint32(key >> (popBits + indexBits)), i: int32(key & (1<<indexBits - 1))}
	}
	return out
}

// communeSorter sorts communes by code along with two parallel slices.
type communeSorter struct {
	c    []Commune
	a, b []int32
}

func (s communeSorter) Len() int           { return len(s.c) }
func (s communeSorter) Less(i, j int) bool { return s.c[i].Code < s.c[j].Code }
func (s communeSorter) Swap(i, j int) {
	s.c[i], s.c[j] = s.c[j], s.c[i]
	s.a[i], s.a[j] = s.a[j], s.a[i]
	s.b[i], s.b[j] = s.b[j], s.b[i]
}

// buildGroup lists the members of each of n keys, of[i] being the key of
// commune i (-1 for none). Members stay in commune order.
func buildGroup(n int, of []int32) group {
	off := make([]int32, n+1)
	for _, k := range of {
		if k >= 0 {
			off[k+1]++
		}
	}
	for k := 1; k <= n; k++ {
		off[k] += off[k-1]
	}
	idx := make([]int32, off[n])
	next := slices.Clone(off[:n])
	for i, k := range of {
		if k >= 0 {
			idx[next[k]] = int32(i)
			next[k]++
		}
	}
	return group{off: off, idx: idx}
}

// sortUnique sorts s by key, stably, and fails on a duplicate key.
func sortUnique[T any](table string, s []T, key func(T) string) ([]T, error) {
	slices.SortStableFunc(s, func(a, b T) int { return strings.Compare(key(a), key(b)) })
	for i := 1; i < len(s); i++ {
		if key(s[i]) == key(s[i-1]) {
			return nil, fmt.Errorf("territoire: parsing %s: duplicate code %q", table, key(s[i]))
		}
	}
	return s, nil
}

// parsePopulation reads a non-negative count; empty means 0 (uninhabited
// territories have none in the data).
func parsePopulation(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, errors.New("negative")
	}
	return n, nil
}

// records iterates over the lines of a decompressed CSV table.
type records struct {
	table string // file name without extension, for errors
	rest  string // text not read yet
	line  int    // 1-based number of the last line read
}

// newRecords decompresses gz and checks its header line.
func newRecords(table, gz, header string) (*records, error) {
	text, err := gunzip(gz)
	if err != nil {
		return nil, fmt.Errorf("territoire: reading %s: %w", table, err)
	}
	r := &records{table: table, rest: text}
	if h, _ := r.nextLine(); h != header {
		return nil, r.errorf("header %q, want %q", h, header)
	}
	return r, nil
}

// gunzip decompresses gz into a string with a single allocation when the
// gzip trailer's size is right.
func gunzip(gz string) (string, error) {
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if n := len(gz); n >= 4 {
		// ISIZE: uncompressed size modulo 2^32, little-endian (RFC 1952).
		size := uint32(gz[n-4]) | uint32(gz[n-3])<<8 | uint32(gz[n-2])<<16 | uint32(gz[n-1])<<24
		if size <= maxUncompressed {
			b.Grow(int(size))
		}
	}
	if _, err := io.Copy(&b, zr); err != nil {
		return "", err
	}
	if err := zr.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// lines returns an upper bound of the number of records left.
func (r *records) lines() int { return strings.Count(r.rest, "\n") + 1 }

// nextLine returns the next non-empty line without its line ending.
func (r *records) nextLine() (string, bool) {
	for r.rest != "" {
		var line string
		line, r.rest, _ = strings.Cut(r.rest, "\n")
		r.line++
		if line = strings.TrimSuffix(line, "\r"); line != "" {
			return line, true
		}
	}
	return "", false
}

// next splits the next record into f, which must have room for exactly the
// expected number of fields. It returns false at the end of the table.
func (r *records) next(f []string) (bool, error) {
	line, ok := r.nextLine()
	if !ok {
		return false, nil
	}
	rest := line
	for i := range len(f) - 1 {
		var found bool
		if f[i], rest, found = strings.Cut(rest, ";"); !found {
			return false, r.errorf("%d fields, want %d", i+1, len(f))
		}
	}
	if strings.IndexByte(rest, ';') >= 0 {
		return false, r.errorf("%d fields, want %d", strings.Count(line, ";")+1, len(f))
	}
	f[len(f)-1] = rest
	return true, nil
}

// errorf reports a problem at the current line, e.g.
// "territoire: parsing communes line 12: 6 fields, want 7".
func (r *records) errorf(format string, args ...any) error {
	return fmt.Errorf("territoire: parsing %s line %d: %w", r.table, r.line, fmt.Errorf(format, args...))
}
