package places

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"numeribus/internal/apperr"
	"numeribus/internal/territoire"
)

// MaxPlaces bounds a list: the national lists hold tens of thousands.
const MaxPlaces = 500_000

// Parsed is a list read from a file.
type Parsed struct {
	Format Format
	Places []Place // in Ref order, one per Ref (the file's last)
	// Skipped counts the lines without a commune the hub knows; SkippedLines
	// gives the first few (line numbers of the file, or item numbers of a
	// JSON array).
	Skipped      int
	SkippedLines []int
}

// maxSkippedLines is how many skipped lines Parsed names.
const maxSkippedLines = 10

// invalid is a file Parse refuses, with a French message for the
// coordinator.
func invalid(format string, args ...any) error { return apperr.Errorf(apperr.Invalid, format, args...) }

// row is one place as the file gives it.
type row struct {
	source, id, pivot, nom, commune, codePostal, codeInsee string
	lat, lon                                               string
}

// Parse reads a list of places in one of the formats of the package doc,
// told apart by its content, and resolves each place's commune with x.
// A file that is none of them, or whose lines mostly have no commune the
// hub knows, is refused with a French error (apperr.Invalid) that says
// what was expected.
func Parse(r io.Reader, x *territoire.Index) (*Parsed, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	if bytes.HasPrefix(head, []byte("\xef\xbb\xbf")) {
		br.Discard(3)
		head = head[3:]
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case len(trimmed) == 0:
		return nil, invalid("Le fichier est vide.")
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return nil, invalid("Ce fichier est un classeur (XLSX ou ODS) : téléchargez la liste au format CSV ou JSON.")
	case !utf8.Valid(trimTrailingRune(head)):
		return nil, invalid("Ce fichier n'est pas un texte en UTF-8 : téléchargez la liste au format CSV (UTF-8) ou JSON, sans la rouvrir dans un tableur.")
	case trimmed[0] == '[' || trimmed[0] == '{':
		return parseJSON(br, x)
	}
	return parseCSV(br, x)
}

// trimTrailingRune drops a rune cut by the end of a peeked buffer.
func trimTrailingRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		if r, _ := utf8.DecodeLastRune(b); r != utf8.RuneError {
			break
		}
		b = b[:len(b)-1]
	}
	return b
}

// collector gathers the rows into a Parsed.
type collector struct {
	x      *territoire.Index
	out    Parsed
	byRef  map[string]Place
	line   int
	format Format
}

func newCollector(x *territoire.Index, f Format) *collector {
	return &collector{x: x, byRef: map[string]Place{}, format: f, out: Parsed{Format: f}}
}

func (c *collector) add(line int, r row) error {
	code, ok := CommuneOf(c.x, r.codeInsee, r.codePostal, r.commune)
	if !ok {
		c.out.Skipped++
		if len(c.out.SkippedLines) < maxSkippedLines {
			c.out.SkippedLines = append(c.out.SkippedLines, line)
		}
		return nil
	}
	p := Place{Nom: strings.TrimSpace(r.nom), Commune: code}
	if p.Nom == "" {
		p.Nom = "(sans nom)"
	}
	switch {
	case c.format == LieuxCSV && strings.TrimSpace(r.id) != "":
		p.Ref = strings.TrimSpace(r.id)
	case c.format == LieuxCSV && strings.TrimSpace(r.pivot) != "":
		p.Ref = strings.TrimSpace(r.pivot)
	case strings.TrimSpace(r.id) != "":
		p.Ref = strings.TrimSpace(r.id)
		if s := strings.TrimSpace(r.source); s != "" {
			p.Ref = s + ":" + p.Ref
		}
	default:
		p.Ref = "ligne-" + strconv.Itoa(line)
	}
	p.Lat, p.Lon, p.HasCoords = coords(r.lat, r.lon)
	c.byRef[p.Ref] = p
	if len(c.byRef) > MaxPlaces {
		return invalid("Le fichier compte plus de %d lieux : ce n'est pas une liste de lieux de médiation.", MaxPlaces)
	}
	return nil
}

func (c *collector) done(what string) (*Parsed, error) {
	total := len(c.byRef) + c.out.Skipped
	if total == 0 {
		return nil, invalid("Le fichier ne contient aucun lieu (%s).", what)
	}
	if len(c.byRef) == 0 || c.out.Skipped > total/2 {
		return nil, invalid("%d lieux sur %d n'ont pas de commune reconnue (colonnes « code_insee », ou « code_postal » et « commune ») : le fichier n'est pas importé. Premières lignes en cause : %s.",
			c.out.Skipped, total, joinInts(c.out.SkippedLines))
	}
	for _, p := range c.byRef {
		c.out.Places = append(c.out.Places, p)
	}
	slices.SortFunc(c.out.Places, func(a, b Place) int { return cmp.Compare(a.Ref, b.Ref) })
	return &c.out, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// The columns a CSV list must have: a name, and a commune (its INSEE
// code, or its postal code and name).
func parseCSV(br *bufio.Reader, x *territoire.Index) (*Parsed, error) {
	first, err := br.Peek(4096)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, fmt.Errorf("reading the file: %w", err)
	}
	headLine, _, _ := bytes.Cut(first, []byte("\n"))
	comma := ','
	if bytes.Count(headLine, []byte(";")) > bytes.Count(headLine, []byte(",")) {
		comma = ';'
	} else if bytes.Count(headLine, []byte("\t")) > bytes.Count(headLine, []byte(",")) {
		comma = '\t'
	}
	cr := csv.NewReader(br)
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, invalid("La première ligne du fichier ne se lit pas comme un en-tête CSV : %v.", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; !dup {
			col[h] = i
		}
	}
	has := func(n string) bool { _, ok := col[n]; return ok }
	if !has("nom") || !(has("code_insee") || has("code_postal") && has("commune")) {
		names := header
		if len(names) > 8 {
			names = append(slices.Clone(names[:8]), "…")
		}
		return nil, invalid("Ce fichier n'est ni une liste de structures data·inclusion ni une liste de lieux de médiation numérique : il faut les colonnes « nom » et « code_insee » (ou « code_postal » et « commune ») ; ses colonnes sont : %s.", strings.Join(names, ", "))
	}
	format := DataInclusionCSV
	if has("pivot") {
		format = LieuxCSV
	}
	c := newCollector(x, format)
	get := func(rec []string, n string) string {
		if i, ok := col[n]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, invalid("Ligne %d illisible : %v. Le fichier n'est pas importé.", pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("reading the file: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // an empty line
		}
		if !utf8.ValidString(strings.Join(rec, "")) {
			return nil, invalid("Ligne %d : le texte n'est pas en UTF-8. Téléchargez la liste au format CSV (UTF-8) sans la rouvrir dans un tableur.", line)
		}
		if err := c.add(line, row{source: get(rec, "source"), id: get(rec, "id"), pivot: get(rec, "pivot"), nom: get(rec, "nom"),
			commune: get(rec, "commune"), codePostal: get(rec, "code_postal"), codeInsee: get(rec, "code_insee"),
			lat: get(rec, "latitude"), lon: get(rec, "longitude")}); err != nil {
			return nil, err
		}
	}
	return c.done("aucune ligne après l'en-tête")
}

// jsonPlace is a data·inclusion structure, the fields the hub keeps;
// coordinates may come as numbers or strings.
type jsonPlace struct {
	Source     string `json:"source"`
	ID         any    `json:"id"`
	Nom        string `json:"nom"`
	Commune    string `json:"commune"`
	CodePostal string `json:"code_postal"`
	CodeInsee  string `json:"code_insee"`
	Latitude   any    `json:"latitude"`
	Longitude  any    `json:"longitude"`
}

func parseJSON(br *bufio.Reader, x *territoire.Index) (*Parsed, error) {
	dec := json.NewDecoder(br)
	dec.UseNumber()
	bad := func(err error) error {
		return invalid("Ce fichier JSON ne se lit pas (%v) : téléchargez la liste des structures data·inclusion au format JSON, sans la modifier.", err)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(err)
	}
	if tok == json.Delim('{') { // {"items": [...]} as the API pages, or {"data": [...]}
		found := false
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, bad(err)
			}
			if k == "items" || k == "data" || k == "structures" {
				if tok, err = dec.Token(); err != nil {
					return nil, bad(err)
				}
				found = true
				break
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, bad(err)
			}
		}
		if !found {
			return nil, invalid("Ce fichier JSON ne contient pas de liste de structures (un tableau, ou un objet avec « items ») : ce n'est pas une liste data·inclusion.")
		}
	}
	if tok != json.Delim('[') {
		return nil, invalid("Ce fichier JSON ne contient pas de liste de structures (un tableau, ou un objet avec « items ») : ce n'est pas une liste data·inclusion.")
	}
	c := newCollector(x, DataInclusionJSON)
	n := 0
	for dec.More() {
		n++
		var p jsonPlace
		if err := dec.Decode(&p); err != nil {
			return nil, invalid("Structure n° %d illisible (%v) : ce n'est pas une liste de structures data·inclusion. Le fichier n'est pas importé.", n, err)
		}
		if p.Nom == "" && p.CodeInsee == "" && p.CodePostal == "" {
			return nil, invalid("La structure n° %d n'a ni « nom » ni « code_insee » : ce n'est pas une liste de structures data·inclusion.", n)
		}
		if err := c.add(n, row{source: p.Source, id: scalar(p.ID), nom: p.Nom, commune: p.Commune, codePostal: p.CodePostal,
			codeInsee: p.CodeInsee, lat: scalar(p.Latitude), lon: scalar(p.Longitude)}); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(err)
	}
	return c.done("tableau vide")
}

// scalar writes a JSON string or number as text ("" for anything else).
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

// coords reads a latitude and a longitude ("48.69" or "48,69"); ok is
// false when either is missing or out of range, or both are zero.
func coords(lat, lon string) (float64, float64, bool) {
	la, err1 := strconv.ParseFloat(strings.Replace(strings.TrimSpace(lat), ",", ".", 1), 64)
	lo, err2 := strconv.ParseFloat(strings.Replace(strings.TrimSpace(lon), ",", ".", 1), 64)
	if err1 != nil || err2 != nil || la < -90 || la > 90 || lo < -180 || lo > 180 || (la == 0 && lo == 0) {
		return 0, 0, false
	}
	return la, lo, true
}

// CommuneOf finds the current commune of a place: its INSEE code (with
// the leading zero a spreadsheet drops, and an arrondissement of Paris,
// Lyon or Marseille read as its commune), else its postal code when it
// names one commune, or one whose name matches.
func CommuneOf(x *territoire.Index, insee, codePostal, nom string) (string, bool) {
	insee = strings.ToUpper(strings.TrimSpace(insee))
	if len(insee) == 4 && strings.Trim(insee, "0123456789") == "" {
		insee = "0" + insee
	}
	if _, ok := x.Commune(insee); ok {
		return insee, true
	}
	if n, err := strconv.Atoi(insee); err == nil {
		switch {
		case n >= 75101 && n <= 75120:
			return "75056", true
		case n >= 69381 && n <= 69389:
			return "69123", true
		case n >= 13201 && n <= 13216:
			return "13055", true
		}
	}
	cp := strings.TrimSpace(codePostal)
	if len(cp) == 4 {
		cp = "0" + cp
	}
	cs := x.ByPostalCode(cp)
	if len(cs) == 1 {
		return cs[0].Code, true
	}
	want := territoire.Normalize(nom)
	for _, c := range cs {
		if want != "" && territoire.Normalize(c.Nom) == want {
			return c.Code, true
		}
	}
	return "", false
}
