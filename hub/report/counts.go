package report

import (
	"cmp"
	"math"
	"math/bits"
	"slices"

	"numeribus/internal/domain"
	"numeribus/internal/territoire"
)

// Count is one line of a breakdown: a code, its French label, how many.
// Count is a number of activities for activity breakdowns and a number of
// people for beneficiary breakdowns; Accompagnements (activity breakdowns
// only) weighs workshops by their participants.
type Count struct {
	Code            string `json:"code"`
	Label           string `json:"label"`
	Count           int    `json:"count"`
	Accompagnements int    `json:"accompagnements,omitempty"`
}

// tally counts occurrences of codes, with their accompagnements.
type tally map[string]*[2]int

func (t tally) add(code string, n, acc int) {
	if code == "" {
		return
	}
	p := t[code]
	if p == nil {
		p = new([2]int)
		t[code] = p
	}
	p[0] += n
	p[1] += acc
}

// ordinal returns the codes of list in list order (zeros included), then
// any code of t the list lacks: for lists with an order of their own
// (age bands, levels, autonomy).
func (t tally) ordinal(list []domain.Code) []Count {
	out := make([]Count, 0, len(list)+1)
	has := make(map[string]bool, len(list))
	for _, c := range list {
		has[c.Code] = true
		var v [2]int
		if p := t[c.Code]; p != nil {
			v = *p
		}
		out = append(out, Count{Code: c.Code, Label: c.Label, Count: v[0], Accompagnements: v[1]})
	}
	var extra []Count
	for code, p := range t {
		if !has[code] {
			extra = append(extra, Count{Code: code, Label: code, Count: p[0], Accompagnements: p[1]})
		}
	}
	slices.SortFunc(extra, func(a, b Count) int { return cmp.Compare(a.Code, b.Code) })
	return append(out, extra...)
}

// ranked returns the same lines as ordinal, most frequent first (ties in
// list order, zeros last): for lists without an order (themes, partners).
func (t tally) ranked(list []domain.Code) []Count {
	out := t.ordinal(list)
	slices.SortStableFunc(out, func(a, b Count) int { return cmp.Compare(b.Count, a.Count) })
	return out
}

// communes returns the lines of a tally of INSEE codes, most frequent
// first, then by code, labelled with the communes' names.
func (t tally) communes() []Count {
	x := territoire.Default()
	out := make([]Count, 0, len(t))
	for code, p := range t {
		label := code
		if c, ok := x.Commune(code); ok {
			label = c.Nom
		}
		out = append(out, Count{Code: code, Label: label, Count: p[0], Accompagnements: p[1]})
	}
	slices.SortFunc(out, func(a, b Count) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	return out
}

// setTally counts the codes of sets by bit.
type setTally struct {
	bits *Bits
	n    [64][2]int
}

func (t *setTally) add(s Set, acc int) {
	for s != 0 {
		i := bitsTrailing(s)
		t.n[i][0]++
		t.n[i][1] += acc
		s &^= 1 << i
	}
}

// ranked returns the codes of the domain list, most frequent first.
func (t *setTally) ranked() []Count {
	tl := tally{}
	for i, c := range t.bits.Codes {
		if t.n[i][0] > 0 {
			tl.add(c, t.n[i][0], t.n[i][1])
		}
	}
	return tl.ranked(t.bits.List.Codes)
}

// share returns part/whole rounded to 4 decimals, 0 when whole is 0.
func share(part, whole int) float64 {
	if whole == 0 {
		return 0
	}
	return round(float64(part)/float64(whole), 4)
}

// hours returns minutes as hours rounded to 2 decimals.
func hours(minutes int) float64 { return round(float64(minutes)/60, 2) }

func round(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}

func bitsTrailing(s Set) int { return bits.TrailingZeros64(uint64(s)) }
