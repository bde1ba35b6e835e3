package syncserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/store/sqlite"
	"numeribus/hub/store/storetest"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
	"numeribus/internal/wire"
)

// The consent rules read each change's record once, where the checks
// decode it (the live path: convertPush then applyPush); a bundle's
// batches go through ApplyPush, which reads them itself. Both must refuse
// the same changes for the same reasons, and the right ones.
func TestConsentRulesReadTheCheckedRecords(t *testing.T) {
	now := time.Now()
	stamp := hlc.FromTime(now.Add(-time.Hour))
	p := map[string]ident.ID{}
	for _, n := range []string{"held", "none", "later", "anon", "assessed", "suivi only", "both"} {
		p[n] = ident.New()
	}
	consent := func(person ident.ID, finalites ...string) domain.Record {
		return &domain.Consent{ID: ident.New(), Beneficiaire: person, Finalites: finalites, Mode: "ecrit", Date: "2026-03-02"}
	}
	person := func(id ident.ID, nom string) domain.Record {
		return &domain.Beneficiary{ID: id, Nom: nom, Genre: "feminin"}
	}
	assessment := func(person ident.ID) domain.Record {
		return &domain.Assessment{ID: ident.New(), Beneficiaire: person, Date: "2026-03-02"}
	}
	// Stored before the batch: a consent to follow "held" and "suivi only".
	before := []domain.Record{consent(p["held"], domain.FinaliteSuivi), consent(p["suivi only"], domain.FinaliteSuivi)}
	batch := []struct {
		rec  domain.Record
		want string // the code it is refused with, "" when taken whole
	}{
		{person(p["held"], "Martin"), ""},
		{person(p["none"], "Durand"), wire.CodeNoConsent}, // taken in part: its gender
		{person(p["later"], "Petit"), ""},
		{consent(p["later"], domain.FinaliteSuivi), ""},
		{person(p["anon"], ""), ""},
		{assessment(p["assessed"]), wire.CodeNoConsent},
		{assessment(p["suivi only"]), wire.CodeNoConsent},
		{consent(p["both"], domain.FinaliteSuivi, domain.FinaliteDiagnostic), ""},
		{assessment(p["both"]), ""},
		{person(p["both"], "Moreau"), ""},
		{&domain.Beneficiary{ID: ident.New(), Nom: "Bernard", Email: "pas-une-adresse"}, wire.CodeInvalid},
	}
	wc := func(seq uint64, r domain.Record) wire.Change {
		f, err := change.Encode(r)
		if err != nil {
			t.Fatal(err)
		}
		c := change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f, HLC: stamp + hlc.Timestamp(seq), Seq: seq}
		w, err := wire.FromChange(&c)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	push := &wire.Push{Batch: 2}
	for i, b := range batch {
		push.Changes = append(push.Changes, wc(uint64(len(before)+1+i), b.rec))
	}
	// run applies the stored consents, then the batch, on a fresh hub,
	// the live way or the bundle's.
	run := func(t *testing.T, live bool) Outcome {
		h := newTestHub(t, Options{})
		ctx := context.Background()
		d, err := h.st.Device(ctx, h.device)
		if err != nil {
			t.Fatal(err)
		}
		first := &wire.Push{Batch: 1}
		for i, r := range before {
			first.Changes = append(first.Changes, wc(uint64(i+1), r))
		}
		for i, p := range []*wire.Push{first, push} {
			out, _, err := pushAs(t, h.st, d, p, uint64(i*len(before)), now, live, false)
			if err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				return out
			}
		}
		return Outcome{}
	}
	refused := func(out Outcome) []string {
		var s []string
		for _, r := range out.Rejected {
			s = append(s, fmt.Sprintf("%d %s %s", r.Seq, r.Code, r.Reason))
		}
		return s
	}
	live, bundle := run(t, true), run(t, false)
	if !slices.Equal(refused(live), refused(bundle)) {
		t.Fatalf("the live path refused\n%q\nthe bundle's\n%q", refused(live), refused(bundle))
	}
	var want []string
	for i, b := range batch {
		if b.want != "" {
			want = append(want, fmt.Sprintf("%d %s", len(before)+1+i, b.want))
		}
	}
	if got := codes(live.Rejected); !slices.Equal(got, want) {
		t.Fatalf("refused %q, want %q", got, want)
	}
	if n := len(batch) - 3; live.Applied != n { // the person without consent applied in part
		t.Fatalf("applied %d, want %d", live.Applied, n)
	}
}

// What the reader reads of a batch's consents (grantsOf) counts only for
// consents the hub does not hold: one it holds, withdrawn later than the
// batch's copy, or one of another team, gives nothing, whether the batch
// goes the live way (with the reader's grants) or the bundle's.
func TestConsentGrantsOnlyForNewConsents(t *testing.T) {
	now := time.Now()
	ctx := context.Background()
	old := hlc.FromTime(now.Add(-time.Hour))
	x, y, z := ident.New(), ident.New(), ident.New()
	withdrawn := &domain.Consent{ID: ident.New(), Beneficiaire: x, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	foreign := &domain.Consent{ID: ident.New(), Beneficiaire: y, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	fresh := &domain.Consent{ID: ident.New(), Beneficiaire: z, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	chg := func(seq uint64, at hlc.Timestamp, r domain.Record) change.Change { return upsertOf(t, seq, at, r) }
	gone := *withdrawn
	gone.RetireLe, gone.Retraits = "2026-03-03", []string{domain.FinaliteSuivi}
	push := pushOf(t, []change.Change{
		chg(3, old+3, withdrawn), // the hub holds it, withdrawn since
		chg(4, old+4, &domain.Beneficiary{ID: x, Nom: "Martin"}),
		chg(5, old+5, foreign), // another team's consent
		chg(6, old+6, &domain.Beneficiary{ID: y, Nom: "Durand"}),
		chg(7, old+7, fresh),
		chg(8, old+8, &domain.Beneficiary{ID: z, Nom: "Petit"}),
	})
	run := func(t *testing.T, live bool) []string {
		h := newTestHub(t, Options{})
		d, err := h.st.Device(ctx, h.device)
		if err != nil {
			t.Fatal(err)
		}
		// Before the batch: the consent given then withdrawn (later
		// than the batch's copy), and a consent of another team.
		if _, _, err := h.st.ApplyBatch(ctx, d.ID, []change.Change{chg(1, old+1, withdrawn), chg(2, hlc.FromTime(now.Add(-time.Minute)), &gone)}, 0); err != nil {
			t.Fatal(err)
		}
		other := enrollIn(t, h.st, "bus-9", "autre")
		if _, _, err := h.st.ApplyBatch(ctx, other.ID, []change.Change{chg(1, old+1, foreign)}, 0); err != nil {
			t.Fatal(err)
		}
		out, b, err := pushAs(t, h.st, d, push, 2, now, live, false)
		if err != nil {
			t.Fatal(err)
		}
		if live && b.grants == nil {
			t.Fatal("the live path read no grants")
		}
		return codes(out.Rejected)
	}
	want := []string{"4 " + wire.CodeNoConsent, "6 " + wire.CodeNoConsent}
	for _, live := range []bool{true, false} {
		if got := run(t, live); !slices.Equal(got, want) {
			t.Errorf("live %v: refused %q, want %q", live, got, want)
		}
	}
}

// lookupCounter counts the consent look-ups made in a batch's turn
// (Consents), the store's other methods — ConsentsAt and ConsentVersion
// among them — promoted from the real one.
type lookupCounter struct {
	*sqlite.Store
	lookups int
}

func (s *lookupCounter) Consents(ctx context.Context, team string, beneficiaries, ids []ident.ID) ([]store.Consent, error) {
	s.lookups++
	return s.Store.Consents(ctx, team, beneficiaries, ids)
}

func (s *lookupCounter) ConsentsAt(ctx context.Context, team string, beneficiaries, ids []ident.ID) ([]store.Consent, int64, error) {
	s.lookups++
	return s.Store.ConsentsAt(ctx, team, beneficiaries, ids)
}

// The reader looks up a batch's consents ahead of its turn; the turn uses
// that read only if no consent was written in between. A consent
// withdrawn by another laptop after the read and before the turn refuses
// the person's identifying fields, as if the batch had been read in its
// turn; with nothing written between, the turn does not look up again.
func TestConsentReadAheadHoldsOnlyWhileNoConsentIsWritten(t *testing.T) {
	now := time.Now()
	ctx := context.Background()
	old := hlc.FromTime(now.Add(-time.Hour))
	person := ident.New()
	given := &domain.Consent{ID: ident.New(), Beneficiaire: person, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	withdrawn := *given
	withdrawn.RetireLe, withdrawn.Retraits = "2026-03-03", []string{domain.FinaliteSuivi}
	chg := func(seq uint64, at hlc.Timestamp, r domain.Record) change.Change { return upsertOf(t, seq, at, r) }
	for _, tc := range []struct {
		name             string
		consented        bool // the consent stored before the batch
		withdraw         bool // withdrawn between the read and the turn
		refused          bool
		lookupsInTheTurn int
	}{
		{"consent held", true, false, false, 0},
		{"consent withdrawn between", true, true, true, 1},
		{"no consent", false, false, true, 0},
	} {
		withdraw := tc.withdraw
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHub(t, Options{})
			st := &lookupCounter{Store: h.st}
			d, err := h.st.Device(ctx, h.device)
			if err != nil {
				t.Fatal(err)
			}
			first := chg(1, old+1, given)
			if !tc.consented {
				first = chg(1, old+1, &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30})
			}
			if _, _, err := h.st.ApplyBatch(ctx, d.ID, []change.Change{first}, 0); err != nil {
				t.Fatal(err)
			}
			ch := chg(2, old+2, &domain.Beneficiary{ID: person, Nom: "Martin", Genre: "feminin"})
			m, err := wire.Decode(encoded(t, pushOf(t, []change.Change{ch})))
			if err != nil {
				t.Fatal(err)
			}
			b, bad := convertPush(nil, d.ID, wire.ProtocolVersion, m.(*wire.Push), now)
			if bad != nil {
				t.Fatal(bad)
			}
			b.consents = readConsentsAhead(ctx, st, d.Team, wire.ProtocolVersion, now, &b)
			if b.consents == nil {
				t.Fatal("the reader made no consent look-up ahead")
			}
			st.lookups = 0 // the reader's
			if withdraw {
				// Another laptop of the team withdraws the consent, later.
				other := enrollIn(t, h.st, "bus-2", d.Team)
				if _, _, err := h.st.ApplyBatch(ctx, other.ID, []change.Change{chg(1, hlc.FromTime(now.Add(-time.Minute)), &withdrawn)}, 0); err != nil {
					t.Fatal(err)
				}
			}
			out, err := applyPush(ctx, st, d, wire.ProtocolVersion, 1, b, 0, now, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := codes(out.Rejected)
			want, lookups := []string(nil), tc.lookupsInTheTurn
			if tc.refused {
				want = []string{"2 " + wire.CodeNoConsent}
			}
			if !slices.Equal(got, want) {
				t.Errorf("refused %q, want %q", got, want)
			}
			if st.lookups != lookups {
				t.Errorf("%d look-ups in the batch's turn, want %d", st.lookups, lookups)
			}
		})
	}
}

// upsertOf is the upsert of r, numbered seq and stamped at.
var upsertOf = storetest.UpsertOf

// pushAs applies push p of device d, at its mark hwm, as the hub reads it
// from its frame: the live way (convertPush, the consent rules read in the
// reader when ahead, applyPush; the conversion is returned) or a bundle's
// (ConvertPush, ApplyPush).
func pushAs(t *testing.T, st store.Store, d store.Device, p *wire.Push, hwm uint64, now time.Time, live, ahead bool) (Outcome, pushed, error) {
	t.Helper()
	ctx := context.Background()
	m, err := wire.Decode(encoded(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if !live {
		cs, rejected, bad := ConvertPush(nil, d.ID, wire.ProtocolVersion, m.(*wire.Push), now)
		if bad != nil {
			t.Fatal(bad)
		}
		out, err := ApplyPush(ctx, st, d, wire.ProtocolVersion, hwm, cs, rejected, 0, now, nil)
		return out, pushed{}, err
	}
	b, bad := convertPush(nil, d.ID, wire.ProtocolVersion, m.(*wire.Push), now)
	if bad != nil {
		t.Fatal(bad)
	}
	if ahead {
		b.consents = readConsentsAhead(ctx, st, d.Team, wire.ProtocolVersion, now, &b)
	}
	out, err := applyPush(ctx, st, d, wire.ProtocolVersion, hwm, b, 0, now, nil)
	return out, b, err
}

// codes says each refusal of rs as "seq code".
func codes(rs []store.Rejected) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%d %s", r.Seq, r.Code))
	}
	return out
}

// recordReader is what nameOf needs of a store (both have it).
type recordReader interface {
	Record(ctx context.Context, id ident.ID) (domain.Kind, string, *merge.State, error)
}

// nameOf returns the name the store holds of person.
func nameOf(t *testing.T, st recordReader, person ident.ID) string {
	t.Helper()
	k, _, state, err := st.Record(context.Background(), person)
	if err != nil {
		t.Fatal(err)
	}
	r, err := change.Decode(k, person, state.Live())
	if err != nil {
		t.Fatal(err)
	}
	return r.(*domain.Beneficiary).Nom
}

// A batch carrying a copy of a consent the hub holds, withdrawn since,
// does not spare the look-up of its person: another consent of theirs,
// stored, still gives the purpose, and their identifying fields are
// taken, the live way (grants read in the reader, the look-up ahead) as
// the bundle's.
func TestConsentOfAStoredCopyStillLooksUpThePerson(t *testing.T) {
	now := time.Now()
	ctx := context.Background()
	old := hlc.FromTime(now.Add(-time.Hour))
	x := ident.New()
	w := &domain.Consent{ID: ident.New(), Beneficiaire: x, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	gone := *w
	gone.RetireLe, gone.Retraits = "2026-03-03", []string{domain.FinaliteSuivi}
	y := &domain.Consent{ID: ident.New(), Beneficiaire: x, Finalites: []string{domain.FinaliteSuivi}, Mode: "oral", Date: "2026-03-04"}
	for _, live := range []bool{true, false} {
		t.Run(fmt.Sprintf("live %v", live), func(t *testing.T) {
			h := newTestHub(t, Options{})
			d, err := h.st.Device(ctx, h.device)
			if err != nil {
				t.Fatal(err)
			}
			stored := []change.Change{upsertOf(t, 1, old+1, w), upsertOf(t, 2, hlc.FromTime(now.Add(-time.Minute)), &gone), upsertOf(t, 3, old+3, y)}
			if _, _, err := h.st.ApplyBatch(ctx, d.ID, stored, 0); err != nil {
				t.Fatal(err)
			}
			push := &wire.Push{Batch: 1}
			for _, c := range []change.Change{upsertOf(t, 4, old+4, w), upsertOf(t, 5, old+5, &domain.Beneficiary{ID: x, Nom: "Martin"})} {
				wc, err := wire.FromChange(&c)
				if err != nil {
					t.Fatal(err)
				}
				push.Changes = append(push.Changes, wc)
			}
			m, err := wire.Decode(encoded(t, push))
			if err != nil {
				t.Fatal(err)
			}
			var out Outcome
			if live {
				b, bad := convertPush(nil, d.ID, wire.ProtocolVersion, m.(*wire.Push), now)
				if bad != nil {
					t.Fatal(bad)
				}
				b.consents = readConsentsAhead(ctx, h.st, d.Team, wire.ProtocolVersion, now, &b)
				out, err = applyPush(ctx, h.st, d, wire.ProtocolVersion, 3, b, 0, now, nil)
			} else {
				cs, rejected, bad := ConvertPush(nil, d.ID, wire.ProtocolVersion, m.(*wire.Push), now)
				if bad != nil {
					t.Fatal(bad)
				}
				out, err = ApplyPush(ctx, h.st, d, wire.ProtocolVersion, 3, cs, rejected, 0, now, nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Rejected) != 0 || out.Applied != 2 {
				t.Fatalf("refused %+v, applied %d; want none refused, 2 applied", out.Rejected, out.Applied)
			}
		})
	}
}

// writesBetween is a store on which a consent is written by someone else
// (another laptop's batch, a `hub import` beside the server) after a
// batch's consent rules were read and before its turn's transaction: in
// the gap where the host pauses for a guest (hostWrite). between runs
// once, before the first batch applied through it.
type writesBetween struct {
	*sqlite.Store
	between func()
	always  bool // before every batch, not once
	calls   int
}

func (s *writesBetween) once() {
	s.calls++
	if f := s.between; f != nil {
		if !s.always {
			s.between = nil
		}
		f()
	}
}

func (s *writesBetween) ApplyBatch(ctx context.Context, device string, cs []change.Change, bytes int) (uint64, int, error) {
	s.once()
	return s.Store.ApplyBatch(ctx, device, cs, bytes)
}

func (s *writesBetween) ApplyPrepared(ctx context.Context, device string, cs []change.Change, p store.Prepared, bytes int) (uint64, int, error) {
	s.once()
	return s.Store.ApplyPrepared(ctx, device, cs, p, bytes)
}

func (s *writesBetween) ApplyAt(ctx context.Context, version *int64, device string, cs []change.Change, p store.Prepared, bytes int) (uint64, int, error) {
	s.once()
	return s.Store.ApplyAt(ctx, version, device, cs, p, bytes)
}

// A consent withdrawn after a batch's rules were read — ahead in the
// reader or in the turn — and before the batch's transaction begins must
// still refuse the person's identifying fields: the counter is checked in
// that transaction, and the rules applied again when it moved. Taking
// them would put back what the withdrawal erased. The changes of the
// batch committed before the move (a refused change recorded, a run
// applied) are told in the ack all the same.
func TestConsentWithdrawnJustBeforeTheTurnRefuses(t *testing.T) {
	now := time.Now()
	ctx := context.Background()
	old := hlc.FromTime(now.Add(-time.Hour))
	chg := func(seq uint64, at hlc.Timestamp, r domain.Record) change.Change { return upsertOf(t, seq, at, r) }
	for _, tc := range []struct {
		name      string
		readAhead bool // the rules read in the reader (else in the turn)
		noConsent bool // a change refused whole before the withdrawn person's (runs)
	}{
		{"read ahead", true, false},
		{"read in the turn", false, false},
		{"read in the turn, runs", false, true},
		{"read ahead, runs", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHub(t, Options{})
			d, err := h.st.Device(ctx, h.device)
			if err != nil {
				t.Fatal(err)
			}
			person, stranger := ident.New(), ident.New()
			given := &domain.Consent{ID: ident.New(), Beneficiaire: person, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
			withdrawn := *given
			withdrawn.RetireLe, withdrawn.Retraits = "2026-03-03", []string{domain.FinaliteSuivi}
			if _, _, err := h.st.ApplyBatch(ctx, d.ID, []change.Change{chg(1, old+1, given)}, 0); err != nil {
				t.Fatal(err)
			}
			var cs []change.Change
			if tc.noConsent {
				// Refused whole (an assessment needs its consent whole):
				// recorded in its own transaction, before the run after.
				// And one refused as it was read (stamped two days ahead):
				// told once, though the batch's refusals are decided again.
				cs = append(cs, chg(2, old+2, &domain.Assessment{ID: ident.New(), Beneficiaire: stranger, Date: "2026-03-02"}),
					chg(3, hlc.FromTime(now.Add(48*time.Hour)), &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30}),
					chg(4, old+3, &domain.Activity{ID: ident.New(), Type: "individuel", Date: "2026-03-02", Duree: 30}))
			}
			cs = append(cs, chg(uint64(len(cs)+2), old+4, &domain.Beneficiary{ID: person, Nom: "Martin", Genre: "feminin"}))
			st := &writesBetween{Store: h.st, between: func() {
				other := enrollIn(t, h.st, "bus-2", d.Team)
				if _, _, err := h.st.ApplyBatch(ctx, other.ID, []change.Change{chg(1, hlc.FromTime(now.Add(-time.Minute)), &withdrawn)}, 0); err != nil {
					t.Fatal(err)
				}
			}}
			out, b, err := pushAs(t, st, d, pushOf(t, cs), 1, now, true, tc.readAhead)
			if err != nil {
				t.Fatal(err)
			}
			if tc.readAhead && b.consents == nil {
				t.Fatal("the reader made no consent look-up ahead")
			}
			got, want := codes(out.Rejected), []string(nil)
			if tc.noConsent {
				want = append(want, "2 "+wire.CodeNoConsent, "3 "+wire.CodeClockAhead)
			}
			last := cs[len(cs)-1].Seq
			want = append(want, fmt.Sprintf("%d %s", last, wire.CodeNoConsent))
			if !slices.Equal(got, want) {
				t.Errorf("refused %q, want %q", got, want)
			}
			if out.HWM != last {
				t.Errorf("mark %d after the batch, want %d", out.HWM, last)
			}
			if nom := nameOf(t, h.st, person); nom != "" {
				t.Errorf("the withdrawn person's name was taken: %q", nom)
			}
		})
	}
}

// Consents written before every attempt: the batch is put off after
// consentAttempts reads of its rules, nothing of it applied, rather than
// applied beside consents its rules did not see.
func TestConsentsWrittenWithoutPausePutTheBatchOff(t *testing.T) {
	now := time.Now()
	ctx := context.Background()
	old := hlc.FromTime(now.Add(-time.Hour))
	h := newTestHub(t, Options{})
	d, err := h.st.Device(ctx, h.device)
	if err != nil {
		t.Fatal(err)
	}
	person := ident.New()
	given := &domain.Consent{ID: ident.New(), Beneficiaire: person, Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
	if _, _, err := h.st.ApplyBatch(ctx, d.ID, []change.Change{upsertOf(t, 1, old+1, given)}, 0); err != nil {
		t.Fatal(err)
	}
	other := enrollIn(t, h.st, "bus-2", d.Team)
	seq := uint64(0)
	st := &writesBetween{Store: h.st, always: true, between: func() {
		seq++
		c := &domain.Consent{ID: ident.New(), Beneficiaire: ident.New(), Finalites: []string{domain.FinaliteSuivi}, Mode: "ecrit", Date: "2026-03-02"}
		if _, _, err := h.st.ApplyBatch(ctx, other.ID, []change.Change{upsertOf(t, seq, old+hlc.Timestamp(seq), c)}, 0); err != nil {
			t.Fatal(err)
		}
	}}
	cs := []change.Change{upsertOf(t, 2, old+2, &domain.Beneficiary{ID: person, Nom: "Martin", Genre: "feminin"})}
	out, err := ApplyPush(ctx, st, d, wire.ProtocolVersion, 1, cs, nil, 0, now, nil)
	if !errors.Is(err, store.ErrConsentsMoved) {
		t.Fatalf("err %v, want ErrConsentsMoved", err)
	}
	if st.calls != consentAttempts {
		t.Errorf("%d attempts, want %d", st.calls, consentAttempts)
	}
	if dev, err := h.st.Device(ctx, d.ID); err != nil || dev.HWM != 1 || out.Applied != 0 {
		t.Errorf("mark %d, %d applied (%v); want 1, 0", dev.HWM, out.Applied, err)
	}
}
