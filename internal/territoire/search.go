package territoire

import (
	"slices"
	"strings"
)

// DefaultSearchLimit is the number of results [Index.Search] returns when
// its limit is 0 or negative.
const DefaultSearchLimit = 20

// Search finds communes for an autocomplete field. It returns at most limit
// communes (limit <= 0 means [DefaultSearchLimit]); nil for an empty query.
//
// A query made of digits, or like a Corsican code ("2A0", "2b"), matches the
// communes whose INSEE code or one of whose postal codes starts with it; a
// commune whose code or postal code equals the query comes first.
//
// Any other query is compared, after [Normalize], with the normalized
// commune names, in three tiers: names equal to the query, then names
// starting with it ("st-die", "ST DIÉ" and "saint-die" find
// Saint-Dié-des-Vosges; "l'abergement" finds L'Abergement-Clémenciat), then
// names with a later word starting with it ("vosges" finds
// Saint-Dié-des-Vosges). Within a tier the most populated commune comes
// first, then the lowest INSEE code.
//
// Because the last word of the query may be unfinished, it is also tried as
// typed: "saint" matches Saintes as well as the Saint-… and Sainte-…
// communes (but not Strasbourg, although names are normalized to "st …"),
// and "sai" or "sain" also match the Saint-… and Sainte-… communes.
//
// Search uses an index of the words of the names built at load time and
// allocates only for the query and the result: a few microseconds for a
// selective query, some tens for a one-letter one.
func (x *Index) Search(query string, limit int) []Commune {
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	query = strings.TrimSpace(query)
	if query == "" {
		return nil
	}
	s := searcher{x: x, limit: limit, seen: make([]uint64, (len(x.communes)+63)/64)}
	if isCodeQuery(query) {
		s.codes(strings.ToUpper(query))
	} else {
		s.names(query)
	}
	return s.results()
}

// searcher gathers the best hits of one search.
type searcher struct {
	x     *Index
	limit int
	seen  []uint64 // bit set of the communes already ranked
	hits  []hit    // sorted by rank if limit <= sortedLimit
}

// hit is a matching commune and its rank.
type hit struct {
	tier int // 0 best
	pop  int
	i    int32 // index in Index.communes, which is sorted by code
}

// Up to sortedLimit results, hits are kept sorted and capped while
// searching; above, they are all gathered and sorted at the end (inserting
// into a long sorted slice would cost more).
const sortedLimit = 64

// before reports whether a ranks before b.
func (a hit) before(b hit) bool {
	if a.tier != b.tier {
		return a.tier < b.tier
	}
	if a.pop != b.pop {
		return a.pop > b.pop
	}
	return a.i < b.i
}

// add ranks commune i unless already ranked. Callers add a commune's best
// tier first.
func (s *searcher) add(tier int, i int32) {
	if s.seen[i/64]&(1<<(i%64)) != 0 {
		return
	}
	s.seen[i/64] |= 1 << (i % 64)
	h := hit{tier, s.x.communes[i].Population, i}
	if s.limit > sortedLimit {
		s.hits = append(s.hits, h)
		return
	}
	n := len(s.hits)
	if n == s.limit && !h.before(s.hits[n-1]) {
		return
	}
	k := n // insertion point; hits are few, scan from the end
	for k > 0 && h.before(s.hits[k-1]) {
		k--
	}
	if n < s.limit {
		s.hits = append(s.hits, hit{})
	}
	copy(s.hits[k+1:], s.hits[k:])
	s.hits[k] = h
}

func (s *searcher) results() []Commune {
	if s.limit > sortedLimit {
		slices.SortFunc(s.hits, func(a, b hit) int {
			if a.before(b) {
				return -1
			}
			return 1 // hits are distinct communes: never equal
		})
		s.hits = s.hits[:min(len(s.hits), s.limit)]
	}
	if len(s.hits) == 0 {
		return nil
	}
	out := make([]Commune, len(s.hits))
	for k, h := range s.hits {
		out[k] = s.x.communes[h.i]
	}
	return out
}

// codes ranks the communes whose INSEE code or a postal code starts with q
// (upper case): exact codes first, then prefixes.
func (s *searcher) codes(q string) {
	communes := s.x.communes
	lo, exact := slices.BinarySearchFunc(communes, q, func(c Commune, q string) int {
		return strings.Compare(c.Code, q)
	})
	// Postal codes are numbers of 5 digits: the prefix q stands for the
	// range [q×10^(5-len), (q+1)×10^(5-len)).
	var cpLo, cpHi uint32
	digits := len(q) < 2 || q[1] <= '9' // only "2A…"/"2B…" have a letter, second
	if digits {
		for i := range len(q) {
			cpLo = cpLo*10 + uint32(q[i]-'0')
		}
		cpHi = cpLo + 1
		for range 5 - len(q) {
			cpLo, cpHi = cpLo*10, cpHi*10
		}
	}
	if exact {
		s.add(0, int32(lo))
	}
	if digits && len(q) == 5 {
		for _, e := range s.x.postalRange(cpLo, cpHi) {
			s.add(0, e.i)
		}
	}
	for i := lo; i < len(communes) && strings.HasPrefix(communes[i].Code, q); i++ {
		s.add(1, int32(i))
	}
	if digits {
		for _, e := range s.x.postalRange(cpLo, cpHi) {
			s.add(1, e.i)
		}
	}
}

// names ranks the communes whose normalized name equals query (tier 0),
// starts with it (tier 1) or has a later word starting with it (tier 2).
func (s *searcher) names(query string) {
	full := Normalize(query)
	if full == "" {
		return
	}
	forms, n := nameForms(full, string(appendNormalized(nil, query, false)))
	ni := &s.x.names
	// Pass 1 ranks the names starting with a form, pass 2 those with a
	// later word starting with one; add skips communes ranked already.
	for pass := 1; pass <= 2; pass++ {
		for _, f := range forms[:n] {
			for _, w := range ni.candidates(f.text) {
				first := w.at == ni.start[w.i]
				if first != (pass == 1) || !f.matchAt(ni.text, int(w.at)) {
					continue
				}
				tier := pass
				if first && ni.name(w.i) == full {
					tier = 0
				}
				s.add(tier, w.i)
			}
		}
	}
}

// form is what a word of a normalized name must start with to match a query.
type form struct {
	text  string // normalized, non-empty
	whole bool   // text must end at a word boundary
}

// matchAt reports whether text[at:] starts with f.
func (f form) matchAt(text string, at int) bool {
	if !strings.HasPrefix(text[at:], f.text) {
		return false
	}
	// text ends with "\n" and f.text holds none: the index is in range.
	return !f.whole || text[at+len(f.text)] == ' ' || text[at+len(f.text)] == '\n'
}

// nameForms returns the forms to look for, full being the normalized query
// and raw the same without the saint → st abbreviation. The last word of the
// query may be unfinished, so:
//   - "saint" is tried as the whole words "st" and "ste" and as the prefix
//     "saint" (Saintes), rather than as the prefix "st" (Strasbourg);
//   - "sainte" as the whole word "ste" and the prefix "sainte";
//   - "sai" and "sain" as typed and as the whole words "st" and "ste";
//   - any other word as typed.
func nameForms(full, raw string) (forms [3]form, n int) {
	head := full[:strings.LastIndexByte(full, ' ')+1] // "" or ends with a space
	last := raw[strings.LastIndexByte(raw, ' ')+1:]
	add := func(word string, whole bool) {
		forms[n] = form{head + word, whole}
		n++
	}
	switch {
	case last == "saint":
		add("st", true)
		add("ste", true)
		add(last, false)
	case last == "sainte":
		add("ste", true)
		add(last, false)
	case len(last) >= 3 && strings.HasPrefix("saint", last):
		add(last, false)
		add("st", true)
		add("ste", true)
	default:
		add(last, false)
	}
	return forms, n
}

// isCodeQuery reports whether q looks like the start of an INSEE or postal
// code: up to 5 digits, or "2A"/"2B" followed by up to 3 digits.
func isCodeQuery(q string) bool {
	if len(q) > 5 {
		return false
	}
	for i := 0; i < len(q); i++ {
		c := q[i]
		if '0' <= c && c <= '9' {
			continue
		}
		if i == 1 && q[0] == '2' && (c == 'A' || c == 'B' || c == 'a' || c == 'b') {
			continue
		}
		return false
	}
	return true
}
