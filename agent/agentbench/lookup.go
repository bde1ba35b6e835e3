package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"numeribus/agent/store"
	"numeribus/agent/ui"
	"numeribus/internal/benchreport"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
	"numeribus/internal/territoire"
)

// lookupRuns is how many persons' pages, and how many searches, are timed
// at each size (after one of each untimed); lookupUnlocks how many unlocks
// and index builds.
const (
	lookupRuns    = 15
	lookupUnlocks = 3
)

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// sizeLabel names a size in figure names: 20000 → "20k".
func sizeLabel(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// lookupTarget is the page and search target at n activities (the issue:
// 150 ms at 20,000, 300 ms at 100,000).
func lookupTarget(n int) float64 {
	if n > 20000 {
		return 300
	}
	return 150
}

// benchLookup times what a mediator waits for on the local UI, through
// its HTTP handler: a person's page and a name search, in a store holding
// the fixture of n activities (with its stops, beneficiaries, consents and
// assessments), unlocked with the production KDF, as agent serve opens it
// (the lookup index built in the background from the unlock on). Also the
// unlock without the index, the index build, and the first page after
// another process wrote. Floors: the same HTTP round trip and template
// for a page without store calls, the raw reads of the rows without
// decryption (every row: what any scan, the build included, must read;
// one person's rows by id: what an indexed page must read), and a search
// over the folded names in a plain slice.
func benchLookup(ctx context.Context, c config, n int, dir string, res *benchreport.Results) error {
	set := fixture.Generate(fixture.Options{N: n, Seed: c.seed})
	recs := set.Records()
	s, _, err := store.Create(ctx, dir, []byte(passphrase), store.Options{})
	if err != nil {
		return err
	}
	in := make(chan []domain.Record)
	go func() {
		defer close(in)
		for i := 0; i < len(recs); i += 4096 {
			in <- recs[i:min(i+4096, len(recs))]
		}
	}()
	t0 := time.Now()
	if _, err := s.SaveStream(ctx, in); err != nil {
		s.Close()
		return fmt.Errorf("seeding %d records: %w", len(recs), err)
	}
	seeded := time.Since(t0)
	if err := s.Close(); err != nil {
		return err
	}

	// Persons: identified beneficiaries spread over the set, the ones a
	// mediator looks up by name; their related rows, for the raw floor.
	related := map[ident.ID][]ident.ID{}
	for _, r := range recs {
		switch r := r.(type) {
		case *domain.Consent:
			related[r.Beneficiaire] = append(related[r.Beneficiaire], r.ID)
		case *domain.Assessment:
			related[r.Beneficiaire] = append(related[r.Beneficiaire], r.ID)
		case *domain.Activity:
			if r.Beneficiaire != nil {
				related[*r.Beneficiaire] = append(related[*r.Beneficiaire], r.ID)
			}
		}
	}
	var idents []*domain.Beneficiary
	for _, b := range set.Beneficiaries {
		if b.Identified() {
			idents = append(idents, b)
		}
	}
	if len(idents) == 0 {
		return fmt.Errorf("fixture of %d activities has no identified beneficiary", n)
	}
	persons := make([]*domain.Beneficiary, 0, lookupRuns+1)
	for i := range lookupRuns + 1 {
		persons = append(persons, idents[i*len(idents)/(lookupRuns+1)])
	}

	// Unlock without the index, then the index build alone, as one-shot
	// commands and agent serve pay them.
	var unlocks, builds []time.Duration
	var heap uint64
	for range lookupUnlocks {
		runtime.GC()
		t0 := time.Now()
		s, err := store.Open(ctx, dir, store.Options{})
		if err != nil {
			return err
		}
		err = s.Unlock(ctx, []byte(passphrase))
		unlocks = append(unlocks, time.Since(t0))
		if err != nil {
			s.Close()
			return err
		}
		before := heapInUse()
		t0 = time.Now()
		err = s.PrepareIndex(ctx)
		builds = append(builds, time.Since(t0))
		heap = max(heap, heapInUse()-min(before, heapInUse()))
		if cerr := s.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("building the index: %w", err)
		}
	}

	// The UI as agent serve runs it: the index is built in the
	// background from the unlock on.
	s, err = store.Open(ctx, dir, store.Options{IndexOnUnlock: true})
	if err != nil {
		return err
	}
	defer s.Close()
	srv := httptest.NewServer(ui.New(ui.Config{Store: s}).Handler())
	defer srv.Close()
	b := newBenchBrowser(srv.URL)
	if _, _, err := b.get("/unlock"); err != nil {
		return err
	}
	runtime.GC()
	t0 = time.Now()
	code, body, err := b.post("/unlock", url.Values{"secret": {passphrase}})
	unlock := time.Since(t0)
	if err != nil || code != http.StatusOK || strings.Contains(body, `name="secret"`) {
		return fmt.Errorf("unlock through the UI: %d %v", code, err)
	}
	// The first page right after unlock, as a mediator opens one.
	t0 = time.Now()
	if err := b.page(persons[0]); err != nil {
		return err
	}
	first := time.Since(t0)

	pages := make([]time.Duration, lookupRuns)
	rows := 0
	for i, p := range persons[1:] {
		runtime.GC()
		t0 := time.Now()
		if err := b.page(p); err != nil {
			return err
		}
		pages[i] = time.Since(t0)
		rows += len(related[p.ID])
	}
	searches := make([]time.Duration, lookupRuns)
	hits := 0
	if _, _, err := b.get("/beneficiaires"); err != nil {
		return err
	}
	if _, err := b.search(territoire.Normalize(persons[0].Nom)); err != nil {
		return err
	}
	for i, p := range persons[1:] {
		// What a mediator types: the surname, lower case, no accents.
		q := territoire.Normalize(p.Nom)
		runtime.GC()
		t0 := time.Now()
		found, err := b.search(q)
		searches[i] = time.Since(t0)
		if err != nil {
			return err
		}
		if found == 0 {
			return fmt.Errorf("search %q found nobody", q)
		}
		hits += found
	}
	// Floor of the UI: the same round trip, session and template for
	// the search form, which reads nothing from the store.
	floors := make([]time.Duration, lookupRuns)
	for i := range floors {
		t0 := time.Now()
		if _, _, err := b.get("/beneficiaires"); err != nil {
			return err
		}
		floors[i] = time.Since(t0)
	}
	// Another process (agent seed beside agent serve) saves a record: the
	// next page catches up from the change log.
	other, err := store.Open(ctx, dir, store.Options{})
	if err != nil {
		return err
	}
	if err := other.Unlock(ctx, []byte(passphrase)); err != nil {
		other.Close()
		return err
	}
	edited := *persons[2]
	edited.Notes = "Revoir mardi"
	if _, err := other.Save(ctx, &edited); err != nil {
		other.Close()
		return fmt.Errorf("saving from another store: %w", err)
	}
	if err := other.Close(); err != nil {
		return err
	}
	t0 = time.Now()
	if err := b.page(persons[1]); err != nil {
		return err
	}
	afterOther := time.Since(t0)

	scan, one, err := rawReads(ctx, filepath.Join(dir, store.FileName), persons[1:], related)
	if err != nil {
		return err
	}
	// Floor of an in-memory search: the folded names in a plain slice.
	var folded []string
	for _, p := range idents {
		folded = append(folded, territoire.Normalize(p.Prenom+" "+p.Nom), territoire.Normalize(p.Nom+" "+p.Prenom))
	}
	memSearch := make([]time.Duration, lookupRuns)
	for i, p := range persons[1:] {
		q := territoire.Normalize(p.Nom)
		t0 := time.Now()
		n := 0
		for _, f := range folded {
			if strings.Contains(f, q) {
				n++
			}
		}
		memSearch[i] = time.Since(t0)
		if n == 0 {
			return fmt.Errorf("no folded name contains %q", q)
		}
	}

	sz := sizeLabel(n)
	target := lookupTarget(n)
	res.AddTarget("page_ms_"+sz, fmt.Sprintf("person's page, %s activities (UI, median)", sz), ms(median(pages)), "ms", "<", target)
	res.Add("page_max_ms_"+sz, fmt.Sprintf("person's page, %s activities (UI, max)", sz), ms(slices.Max(pages)), "ms")
	res.Add("page_first_ms_"+sz, fmt.Sprintf("first person's page after unlock, %s activities", sz), ms(first), "ms")
	res.AddTarget("search_ms_"+sz, fmt.Sprintf("name search, %s activities (UI, median)", sz), ms(median(searches)), "ms", "<", target)
	res.Add("search_max_ms_"+sz, fmt.Sprintf("name search, %s activities (UI, max)", sz), ms(slices.Max(searches)), "ms")
	res.Add("ui_floor_ms_"+sz, fmt.Sprintf("floor: search form, no store call, %s activities (median)", sz), ms(median(floors)), "ms")
	res.Add("raw_scan_ms_"+sz, fmt.Sprintf("floor of a scan: every record row read, not decrypted, %s", sz), ms(scan), "ms")
	res.Add("raw_person_rows_us_"+sz, fmt.Sprintf("floor of an indexed page: one person's rows read by id, not decrypted, %s (median)", sz), float64(one)/float64(time.Microsecond), "µs")
	res.Add("search_floor_memory_us_"+sz, fmt.Sprintf("floor of an in-memory search: contains over every folded name, %s (median)", sz),
		float64(median(memSearch))/float64(time.Microsecond), "µs")
	res.Add("page_after_other_process_ms_"+sz, fmt.Sprintf("person's page after another process saved (index catches up), %s", sz), ms(afterOther), "ms")
	res.Add("unlock_ui_ms_"+sz, fmt.Sprintf("unlock through the UI (index built in the background), %s", sz), ms(unlock), "ms")
	res.Add("unlock_no_index_ms_"+sz, fmt.Sprintf("unlock without the index (open + Argon2id), %s (median)", sz), ms(median(unlocks)), "ms")
	res.Add("index_build_ms_"+sz, fmt.Sprintf("index build alone (decrypt every record, both cores), %s (median)", sz), ms(median(builds)), "ms")
	res.Add("unlock_with_index_ms_"+sz, fmt.Sprintf("unlock, then index ready, %s (median)", sz), ms(median(unlocks)+median(builds)), "ms")
	res.Add("index_heap_mb_"+sz, fmt.Sprintf("index memory (heap in use after build − before), %s", sz), float64(heap)/(1<<20), "MiB")
	if n == c.lookup[0] {
		res.Note("lookup: page and search targets apply to the median over %d different people; the first page after unlock waits for the index build the unlock started; unlock_no_index is what the one-shot commands pay", lookupRuns)
	}
	res.Note("lookup %s: %d records (%d beneficiaries, %d identified), seeded in %.1f s; pages show %.1f related records on average, searches found %.1f people on average",
		sz, len(recs), len(set.Beneficiaries), len(idents), seeded.Seconds(), float64(rows)/lookupRuns, float64(hits)/lookupRuns)
	return nil
}

// rawReads times, on a read connection like the store's, the reading of
// every record row (what a scan must read before decrypting anything),
// and the median reading of one person's rows by id.
func rawReads(ctx context.Context, path string, persons []*domain.Beneficiary, related map[ident.ID][]ident.ID) (scan, one time.Duration, err error) {
	r, err := sqlitex.OpenReader(path, 1)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	read := func(q string, args ...any) error {
		rows, err := r.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, body []byte
			if err := rows.Scan(&id, &body); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	runtime.GC()
	t0 := time.Now()
	if err := read(`SELECT id, body FROM records ORDER BY id`); err != nil {
		return 0, 0, err
	}
	scan = time.Since(t0)
	get, err := r.PrepareContext(ctx, `SELECT id, body FROM records WHERE id = ?`)
	if err != nil {
		return 0, 0, err
	}
	defer get.Close()
	ds := make([]time.Duration, len(persons))
	for i, p := range persons {
		t0 := time.Now()
		for _, id := range append([]ident.ID{p.ID}, related[p.ID]...) {
			var idb, body []byte
			if err := get.QueryRowContext(ctx, id[:]).Scan(&idb, &body); err != nil && err != sql.ErrNoRows {
				return 0, 0, err
			}
		}
		ds[i] = time.Since(t0)
	}
	return scan, median(ds), nil
}

// benchBrowser is an HTTP client with its cookies, posting forms as the
// browser does (same-origin).
type benchBrowser struct {
	base string
	c    *http.Client
}

func newBenchBrowser(base string) *benchBrowser {
	jar, _ := cookiejar.New(nil)
	return &benchBrowser{base: base, c: &http.Client{Jar: jar}}
}

func (b *benchBrowser) do(req *http.Request) (int, string, error) {
	resp, err := b.c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (b *benchBrowser) get(path string) (int, string, error) {
	req, err := http.NewRequest("GET", b.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	return b.do(req)
}

func (b *benchBrowser) post(path string, v url.Values) (int, string, error) {
	req, err := http.NewRequest("POST", b.base+path, strings.NewReader(v.Encode()))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

// page loads p's page and checks it is theirs.
func (b *benchBrowser) page(p *domain.Beneficiary) error {
	code, body, err := b.get("/beneficiaires/" + p.ID.String())
	if err != nil {
		return err
	}
	if code != http.StatusOK || !strings.Contains(body, "beneficiaire="+p.ID.String()) {
		return fmt.Errorf("page of %s: status %d, not their page", p.ID, code)
	}
	return nil
}

// search posts q and returns how many people it found.
func (b *benchBrowser) search(q string) (int, error) {
	code, body, err := b.post("/beneficiaires", url.Values{"q": {q}})
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("search: status %d", code)
	}
	return strings.Count(body, `<li><a href="/beneficiaires/`), nil
}
