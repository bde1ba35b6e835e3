package syncserver

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/wire"
)

// consentNeed is a pushed change that needs an active consent of its
// person: identifying data of a beneficiary (suivi nominatif), or an
// assessment (diagnostic).
type consentNeed struct {
	i        int // its index in the batch
	person   ident.ID
	finalite string
	fields   []string // the identifying fields a beneficiary change sets
}

// consentRefusals adds to rejected, in seq order, the changes of cs that
// identify a person, or assess them, without an active consent of theirs
// for that purpose: what the agent's forms refuse (domain Validate), and
// a device holding the push key could send anyway. The consent may be
// merged at the hub already, or come with the batch, before or after the
// change (the agent saves a person and their consent in one write); a
// consent active before the batch or after it counts, so that a
// withdrawal later in the batch (which erases what it covered) does not
// refuse what came before it.
//
// It runs when the batch's turn comes (in a live session, in the
// connection's owner goroutine): the batches before it are applied, their
// consents visible. One store look-up per batch, none for a batch that
// identifies nobody. Changes at or below the device's mark hwm (a retry)
// are not checked again: the store skips them. delivered are the consent
// changes the same delivery carries in its other batches (a bundle's
// other parts, which the hub holds all at once): they count as the
// batch's own; nil for a live push.
//
// facts, aligned with cs, are what the conversion read of each change's
// record (consentFactOf); nil, they are read here. pre, when not nil, is
// what the batch's consent changes give if their consents are new
// (grantsOf, in the reader): used when no change of the batch is a
// retry, it spares the writer's turn their merge and decoding. read,
// when not nil, is what
// the rules gave in the reader (readConsentsAhead): used when they were
// applied to this batch as it stands and no consent was written since.
//
// The basis says what the rules read, for the batch to be applied only
// beside it (consentBasis.apply).
func consentRefusals(ctx context.Context, st store.Store, team string, proto uint32, hwm uint64, now time.Time,
	cs []change.Change, facts []consentFact, rejected []store.Rejected, delivered []change.Change, pre *consentGrants, read *consentRead) (_ []store.Rejected, _ consentBasis, _ error) {
	if proto < 3 {
		// Its whole batch would be refused, and a person and their
		// consent cut apart by a batch boundary would block it for good.
		return rejected, consentBasis{}, nil
	}
	if read.holds(ctx, st, hwm, cs, delivered) {
		rejected = append(rejected, read.refused...)
		slices.SortFunc(rejected, func(a, b store.Rejected) int { return cmpSeq(a.Seq, b.Seq) })
		v := read.version
		return rejected, consentBasis{at: &v}, nil
	}
	q := planConsents(hwm, cs, facts, rejected, delivered, pre)
	if len(q.needs) == 0 {
		return rejected, consentBasis{}, nil
	}
	var (
		stored []store.Consent
		basis  consentBasis
		err    error
	)
	if cv, ok := st.(store.ConsentVersioner); ok {
		var v int64
		stored, v, err = cv.ConsentsAt(ctx, team, q.persons, q.ids)
		basis.at = &v
	} else {
		stored, err = st.Consents(ctx, team, q.persons, q.ids)
		basis.pinned = stored
	}
	if err != nil {
		return rejected, consentBasis{}, fmt.Errorf("reading the consents of batch's persons: %w", err)
	}
	return decideConsents(team, now, cs, q, stored, rejected), basis, nil
}

// consentBasis is what a batch's consent rules read of the store, which
// the batch must still find in its transaction: no consent written since
// (at, the counter of a store.ConsentVersioner), or the consents read
// unchanged (pinned, for a store.ConsentPinner). Empty, the rules read
// nothing.
type consentBasis struct {
	at     *int64
	pinned []store.Consent
}

// apply applies cs (prepared as p, when not nil) of device on st beside
// b: at the counter, or with the consents pinned, when the store can;
// store.ErrConsentsMoved when what the rules read has changed.
func (b consentBasis) apply(ctx context.Context, st store.Store, device string, cs []change.Change, p store.Prepared, size int) (uint64, int, error) {
	if cv, ok := st.(store.ConsentVersioner); ok && b.at != nil {
		return cv.ApplyAt(ctx, b.at, device, cs, p, size)
	}
	if cp, ok := st.(store.ConsentPinner); ok && len(b.pinned) > 0 {
		return cp.ApplyPinned(ctx, b.pinned, device, cs, size)
	}
	if pr, ok := st.(store.Preparer); ok && p != nil {
		return pr.ApplyPrepared(ctx, device, cs, p, size)
	}
	return st.ApplyBatch(ctx, device, cs, size)
}

// decideConsents adds to rejected, in seq order, the needs of q that no
// consent gives, stored ones and the batch's merged in (consentRefusals).
func decideConsents(team string, now time.Time, cs []change.Change, q consentQuery, stored []store.Consent, rejected []store.Rejected) []store.Rejected {
	given := givenPurposes(team, stored, q.consents, q.pre)
	for _, n := range q.needs {
		if given[purpose{n.person, n.finalite}] {
			continue
		}
		ch := &cs[n.i]
		rejected = append(rejected, store.Rejected{Seq: ch.Seq, HLC: ch.HLC, Kind: ch.Kind, ID: ch.ID, Op: ch.Op, At: now,
			Code: wire.CodeNoConsent, Reason: n.reason()})
	}
	slices.SortFunc(rejected, func(a, b store.Rejected) int { return cmpSeq(a.Seq, b.Seq) })
	return rejected
}

// consentQuery is what a batch's consent rules need: the changes that
// need a consent, the consent changes that count (the batch's and the
// delivery's), and what to look up in the store — the persons whose
// consents are not given by the batch's own, the consents by id.
type consentQuery struct {
	needs        []consentNeed
	consents     []*change.Change
	pre          *consentGrants
	persons, ids []ident.ID
}

// planConsents returns the consentQuery of a batch (consentRefusals).
func planConsents(hwm uint64, cs []change.Change, facts []consentFact, rejected []store.Rejected, delivered []change.Change, pre *consentGrants) consentQuery {
	refused := make(map[uint64]bool, len(rejected))
	for _, r := range rejected {
		refused[r.Seq] = true
	}
	var q consentQuery
	var consentFacts []consentFact
	for i := range cs {
		ch := &cs[i]
		if ch.Seq <= hwm || refused[ch.Seq] {
			continue
		}
		var f consentFact
		if facts != nil {
			f = facts[i]
		} else {
			f = consentFactOf(ch, nil)
		}
		if ch.Kind == domain.KindConsent {
			q.consents = append(q.consents, ch)
			consentFacts = append(consentFacts, f)
		} else if f.needs {
			n := f.need
			n.i = i
			q.needs = append(q.needs, n)
		}
	}
	if len(q.needs) == 0 {
		return q
	}
	if pre != nil && (len(delivered) > 0 || len(cs) == 0 || cs[0].Seq <= hwm || pre.from != cs[0].Seq) {
		pre = nil // not the batch it was computed for
	}
	q.pre = pre
	for i := range delivered {
		q.consents = append(q.consents, &delivered[i])
		consentFacts = append(consentFacts, consentFactOf(&delivered[i], nil))
	}
	persons := map[ident.ID]bool{}
	for _, n := range q.needs {
		// Every person, even one the batch's own consents would give the
		// purpose: those consents may be stored already and withdrawn
		// since (merged the full way, they give nothing), and the
		// person's other consents must then be there.
		persons[n.person] = true
	}
	ids := map[ident.ID]bool{}
	for i, ch := range q.consents {
		ids[ch.ID] = true
		if f := consentFacts[i]; !f.person.IsZero() && pre == nil {
			persons[f.person] = true
		}
	}
	q.persons, q.ids = slices.Collect(maps.Keys(persons)), slices.Collect(maps.Keys(ids))
	return q
}

// consentRead is a batch's consent rules applied in the connection's
// reader, ahead of its turn at the writer: the refusals they gave, and
// the store's consent counter as their look-up saw it
// (store.ConsentVersioner). They were applied as if every change of the
// batch were new (the mark just before its first), for a live push
// (nothing delivered with it).
type consentRead struct {
	from    uint64 // the seq of the batch's first change
	version int64
	refused []store.Rejected
}

// readConsentsAhead applies the consent rules to a converted batch b in
// the reader, when the store can tell later whether its look-up still
// holds (nil otherwise, or when the batch needs no consent, or on a
// failed read: the turn then applies them itself).
func readConsentsAhead(ctx context.Context, st store.Store, team string, proto uint32, now time.Time, b *pushed) *consentRead {
	cv, ok := st.(store.ConsentVersioner)
	if !ok || proto < 3 || len(b.cs) == 0 || b.cs[0].Seq == 0 {
		return nil
	}
	from := b.cs[0].Seq
	q := planConsents(from-1, b.cs, b.facts, b.rejected, nil, b.grants)
	if len(q.needs) == 0 {
		return nil
	}
	stored, version, err := cv.ConsentsAt(ctx, team, q.persons, q.ids)
	if err != nil {
		return nil
	}
	return &consentRead{from: from, version: version, refused: decideConsents(team, now, b.cs, q, stored, nil)}
}

// holds reports whether r is what the consent rules give cs as it is
// applied now: every change above the device's mark hwm, nothing
// delivered with it — the same needs, persons and consents to look up
// (planConsents depends on nothing else) — and no consent written since
// (the store's counter has not moved): the same stored consents.
func (r *consentRead) holds(ctx context.Context, st store.Store, hwm uint64, cs []change.Change, delivered []change.Change) bool {
	if r == nil || len(delivered) > 0 || len(cs) == 0 || cs[0].Seq != r.from || hwm != r.from-1 {
		return false
	}
	cv, ok := st.(store.ConsentVersioner)
	if !ok {
		return false
	}
	v, err := cv.ConsentVersion(ctx)
	return err == nil && v == r.version
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// reason says what is missing, naming fields, never their values.
func (n consentNeed) reason() string {
	var r string
	if n.finalite == domain.FinaliteSuivi {
		r = fmt.Sprintf("identifying fields (%s) without an active consent %q of the person", strings.Join(n.fields, ", "), n.finalite)
	} else {
		r = fmt.Sprintf("assessment without an active consent %q of the person", n.finalite)
	}
	if len(r) > wire.MaxReason {
		r = strings.ToValidUTF8(r[:wire.MaxReason], "")
	}
	return r
}

// consentFact is what the consent rules read of a change's record: the
// consent it needs, or, for a consent, the person it names.
type consentFact struct {
	needs  bool
	need   consentNeed
	person ident.ID // a consent's person; zero when it names none
}

// consentFactOf reads the consent fact of ch; rec is the record its
// fields decode to, decoded here when nil (and only where the fact needs
// it).
func consentFactOf(ch *change.Change, rec domain.Record) consentFact {
	var f consentFact
	if ch.Kind == domain.KindConsent {
		f.person, _ = consentPerson(ch.ID, ch.Fields, rec)
		return f
	}
	f.need, f.needs = needOf(ch, rec)
	return f
}

// needOf says whether ch needs a consent: a beneficiary upsert that sets
// an identifying field (domain.Beneficiary.Identified over the fields it
// carries: the one list of what identifies someone), an assessment upsert
// that names its person. Its fields passed CheckFields: they decode. rec
// is the record they decode to, or nil: then they are decoded here, when
// they must be.
func needOf(ch *change.Change, rec domain.Record) (consentNeed, bool) {
	if ch.Op != change.OpUpsert {
		return consentNeed{}, false
	}
	decoded := func() (domain.Record, error) {
		if rec != nil && rec.Kind() == ch.Kind {
			return rec, nil
		}
		return change.Decode(ch.Kind, ch.ID, ch.Fields)
	}
	switch ch.Kind {
	case domain.KindBeneficiary:
		var set []string
		personal := domain.PersonalFields(ch.Kind)
		for _, n := range personal {
			if v, ok := ch.Fields[n]; ok && !bytes.Equal(v, change.Null) {
				f, _ := domain.FieldByNum(ch.Kind, n)
				if set == nil { // room for all at once, not grown by doubling
					set = make([]string, 0, len(personal))
				}
				set = append(set, f.Name)
			}
		}
		if len(set) == 0 {
			return consentNeed{}, false
		}
		r, err := decoded()
		if err != nil || !r.(*domain.Beneficiary).Identified() {
			return consentNeed{}, false
		}
		return consentNeed{person: ch.ID, finalite: domain.FinaliteSuivi, fields: set}, true
	case domain.KindAssessment:
		if _, ok := ch.Fields[assessmentPerson]; !ok {
			return consentNeed{}, false
		}
		r, err := decoded()
		if err != nil || r.(*domain.Assessment).Beneficiaire.IsZero() {
			return consentNeed{}, false
		}
		return consentNeed{person: r.(*domain.Assessment).Beneficiaire, finalite: domain.FinaliteDiagnostic}, true
	}
	return consentNeed{}, false
}

// assessmentPerson is the number of an assessment's beneficiaire field.
var assessmentPerson = func() uint64 {
	for _, f := range domain.Fields(domain.KindAssessment) {
		if f.Name == "beneficiaire" {
			return f.Num
		}
	}
	panic("syncserver: an assessment has no beneficiaire field")
}()

// consentPerson returns the person a consent's fields name, if they do;
// rec is the record they decode to, or nil (then they are decoded here).
func consentPerson(id ident.ID, f change.Fields, rec domain.Record) (ident.ID, bool) {
	c, ok := rec.(*domain.Consent)
	if !ok {
		r, err := change.Decode(domain.KindConsent, id, f)
		if err != nil {
			return ident.Nil, false
		}
		c = r.(*domain.Consent)
	}
	p := c.Beneficiaire
	return p, !p.IsZero()
}

// givenPurposes returns, per person, the purposes some consent of theirs
// gives, before the batch (as stored) or after it (the batch's consent
// changes merged into the stored states). Consents of another team are
// left out: the store skips the batch's changes to them.
//
// pre, when not nil, holds what the batch's consents give when new: those
// not stored take it instead of being merged and decoded here.
func givenPurposes(team string, stored []store.Consent, batch []*change.Change, pre *consentGrants) map[purpose]bool {
	given := map[purpose]bool{}
	add := func(g consentGrant) {
		for _, f := range g.purposes {
			given[purpose{g.person, f}] = true
		}
	}
	grant := func(id ident.ID, st *merge.State) { add(grantOf(id, st)) }
	states := map[ident.ID]*merge.State{}
	foreign := map[ident.ID]bool{}
	for _, sc := range stored {
		if sc.Team != team {
			foreign[sc.ID] = true
			continue
		}
		grant(sc.ID, sc.State)
		states[sc.ID] = sc.State
	}
	for _, ch := range batch {
		if foreign[ch.ID] {
			continue
		}
		st := states[ch.ID]
		if st == nil {
			if g, ok := pre.of(ch.ID); ok {
				add(g) // new: what it gives was read in the reader
				continue
			}
			st = merge.NewState()
			states[ch.ID] = st
		}
		merge.Apply(st, domain.KindConsent, ch)
	}
	for id, st := range states {
		grant(id, st)
	}
	return given
}

// grantOf returns the person and the active purposes of the consent id
// whose merged state is st: none when deleted or when it does not decode.
func grantOf(id ident.ID, st *merge.State) consentGrant {
	if st.IsDeleted() {
		return consentGrant{}
	}
	r, err := change.Decode(domain.KindConsent, id, st.Live())
	if err != nil {
		return consentGrant{}
	}
	cn := r.(*domain.Consent)
	return consentGrant{person: cn.Beneficiaire, purposes: cn.Active()}
}

// purpose is one purpose (finalité) of one person: what a consent gives
// and a change needs. One flat set of them, rather than a set of purposes
// per person, spares the reader and the writer's turn a map per person.
type purpose struct {
	person   ident.ID
	finalite string
}

// consentGrant is what one consent gives: purposes of its person.
type consentGrant struct {
	person   ident.ID
	purposes []string
}

// consentGrants is what the consent changes of a pushed batch give if
// their consents are new and every change of the batch is above the
// device's mark: per consent, the grant of its state merged from empty
// over the batch's changes to it. The reader computes it beside the
// writer (grantsOf); the batch's turn uses it for the consents the store
// does not hold (givenPurposes), when the batch still starts at from.
type consentGrants struct {
	from uint64
	byID map[ident.ID]consentGrant
}

// grantsOf returns the consentGrants of cs, less the changes refused.
func grantsOf(cs []change.Change, refused []store.Rejected) *consentGrants {
	if len(cs) == 0 {
		return nil
	}
	out := &consentGrants{from: cs[0].Seq}
	skip := make(map[uint64]bool, len(refused))
	for _, r := range refused {
		skip[r.Seq] = true
	}
	var states map[ident.ID]*merge.State
	for i := range cs {
		ch := &cs[i]
		if ch.Kind != domain.KindConsent || skip[ch.Seq] {
			continue
		}
		if states == nil {
			states = map[ident.ID]*merge.State{}
		}
		st := states[ch.ID]
		if st == nil {
			st = merge.NewState()
			states[ch.ID] = st
		}
		merge.Apply(st, domain.KindConsent, ch)
	}
	out.byID = make(map[ident.ID]consentGrant, len(states))
	for id, st := range states {
		out.byID[id] = grantOf(id, st)
	}
	return out
}

// of returns the grant of consent id, if the batch holds it (false on a
// nil g).
func (g *consentGrants) of(id ident.ID) (consentGrant, bool) {
	if g == nil {
		return consentGrant{}, false
	}
	c, ok := g.byID[id]
	return c, ok
}
