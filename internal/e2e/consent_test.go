package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// person returns an identified beneficiary (a name: identifying data).
func person(prenom string) *domain.Beneficiary {
	return &domain.Beneficiary{ID: ident.New(), Prenom: prenom, Nom: "Martin", Genre: "feminin"}
}

// consentFor returns a consent of b giving finalites.
func consentFor(b ident.ID, finalites ...string) *domain.Consent {
	return &domain.Consent{ID: ident.New(), Beneficiaire: b, Finalites: finalites, Mode: "oral_trace", Date: "2026-03-02"}
}

// A device pushing identifying data of a person with no consent of theirs
// (the push key of a stolen laptop, or a buggy agent, gets past the
// agent's forms): the hub refuses that change alone, with a reason that
// names the fields and the missing purpose, and the team never receives
// it. A consent in the same batch, before or after the person, or in an
// earlier batch still in flight, lets the person through; so does a
// diagnostic consent for an assessment, whose absence refuses it.
func TestHubRefusesIdentityWithoutConsent(t *testing.T) {
	h := startHub(t)
	bad := newAgent(t, h, "bus-1", "cd88", nil)
	mate := newAgent(t, h, "bus-2", "cd88", nil)
	ws, w := session(t, h, bad)
	ts := hlc.FromTime(time.Now())
	seq := w.HWM
	next := func(r domain.Record) wire.Change {
		seq++
		ts++
		return wireStop(t, r, seq, ts)
	}
	recs := stops(2)
	lone := person("Awa")                                           // no consent anywhere: refused
	anon := &domain.Beneficiary{ID: ident.New(), Genre: "masculin"} // nothing identifying: taken
	after := person("Binta")                                        // consent later in the batch
	afterC := consentFor(after.ID, domain.FinaliteSuivi, domain.FinaliteDiagnostic)
	before := person("Chloé") // consent earlier in the batch
	beforeC := consentFor(before.ID, domain.FinaliteSuivi)
	earlier := person("Dalia") // consent in the batch before, still in flight
	earlierC := consentFor(earlier.ID, domain.FinaliteSuivi)
	assessOK := &domain.Assessment{ID: ident.New(), Beneficiaire: after.ID, Date: "2026-03-02", AutonomieGlobale: "autonome"}
	assessNo := &domain.Assessment{ID: ident.New(), Beneficiaire: before.ID, Date: "2026-03-02", AutonomieGlobale: "autonome"}

	batch1 := []wire.Change{next(recs[0]), next(lone), next(anon), next(after), next(assessOK), next(afterC),
		next(beforeC), next(before), next(assessNo), next(recs[1])}
	batch2 := []wire.Change{next(earlierC)}
	batch3 := []wire.Change{next(earlier)}
	for i, b := range [][]wire.Change{batch1, batch2, batch3} {
		ws.WriteMessage(websocket.BinaryMessage, frame(t, &wire.Push{Batch: uint64(i + 1), Changes: b}))
	}
	ack1, _ := readMsg(t, ws).(*wire.Ack)
	// The lone person's fields that need no consent are taken (its
	// identifying ones refused, and said so); the assessment is refused
	// whole.
	if ack1 == nil || ack1.HWM != batch1[len(batch1)-1].Seq || int(ack1.Applied) != len(batch1)-1 || len(ack1.Rejected) != 2 {
		t.Fatalf("first ack: %+v; want %d applied, the lone person's identity and the assessment without consent refused", ack1, len(batch1)-1)
	}
	if r := ack1.Rejected[0]; r.Seq != batch1[1].Seq || r.Code != wire.CodeNoConsent ||
		!strings.Contains(r.Reason, "prenom") || !strings.Contains(r.Reason, domain.FinaliteSuivi) || strings.Contains(r.Reason, "Awa") {
		t.Errorf("refusal of the person: %+v; want %s naming prenom and %s, not the value", r, wire.CodeNoConsent, domain.FinaliteSuivi)
	}
	if r := ack1.Rejected[1]; r.Seq != batch1[8].Seq || r.Code != wire.CodeNoConsent || !strings.Contains(r.Reason, domain.FinaliteDiagnostic) {
		t.Errorf("refusal of the assessment: %+v", r)
	}
	for i, want := range []uint64{batch2[0].Seq, batch3[0].Seq} {
		if a, _ := readMsg(t, ws).(*wire.Ack); a == nil || a.HWM != want || a.Applied != 1 || len(a.Rejected) != 0 {
			t.Fatalf("ack of batch %d: %+v; want everything applied (the consent came in the batch before)", i+2, a)
		}
	}
	ws.Close()

	mate.sync(t)
	lines := mate.lines(t)
	for _, r := range []domain.Record{recs[0], recs[1], anon, after, afterC, before, beforeC, earlier, earlierC, assessOK, lone} {
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, r.RecordID().String()) }) {
			t.Errorf("accepted %s %s missing on the teammate", r.Kind(), r.RecordID())
		}
	}
	if len(lines) != 11 {
		t.Errorf("the teammate holds %d records, want the 11 accepted", len(lines))
	}
	for _, l := range lines {
		if strings.Contains(l, "Awa") || strings.Contains(l, assessNo.ID.String()) {
			t.Errorf("refused data reached the teammate: %s", l)
		}
		if strings.Contains(l, lone.ID.String()) && (strings.Contains(l, "Martin") || !strings.Contains(l, `"genre":"feminin"`)) {
			t.Errorf("the lone person reached the teammate with identity, or without the fields that need no consent: %s", l)
		}
	}
	sameLines(t, "hub and teammate", hubLines(t, h, "cd88"), lines)
}

// A legit agent loses nothing to the hub's consent check: persons saved
// before their consents (an import lists them so, the UI saves a person
// first) and pushed in small batches reach the hub before the consent
// that allows them, and are refused; the agent, holding the consent,
// sends them again after it. After one round the hub and a teammate hold
// every person intact, nothing stays refused, and the next round has
// nothing to send.
func TestConsentAndPersonInTwoBatches(t *testing.T) {
	h := startHub(t)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	mate := newAgent(t, h, "bus-2", "cd88", nil)
	a.cl.BatchCount = 7 // cuts between persons and consents
	// The UI's order, a person then their consent, at seq 7 and 8: the
	// first batch ends between them.
	a.save(t, stops(6)...)
	ui := person("Zoé")
	a.save(t, ui, consentFor(ui.ID, domain.FinaliteSuivi))
	// An import listing every person before every consent.
	var persons, consents []domain.Record
	for i := range 20 {
		p := person(fmt.Sprintf("Personne %d", i))
		persons = append(persons, p)
		consents = append(consents, consentFor(p.ID, domain.FinaliteSuivi, domain.FinaliteDiagnostic))
	}
	a.save(t, append(persons, consents...)...)

	rep := a.sync(t)
	if rep.Requeued == 0 || rep.Rejected != 0 || rep.PendingAfter != 0 {
		t.Fatalf("sync: %d sent again, %d refused, %d pending; want some sent again, none refused or pending", rep.Requeued, rep.Rejected, rep.PendingAfter)
	}
	ctx := context.Background()
	if rs, err := a.st.RejectedChanges(ctx); err != nil || len(rs) != 0 {
		t.Fatalf("refusals kept: %+v, %v", rs, err)
	}
	if again := a.sync(t); again.Pushed != 0 || again.Requeued != 0 || again.Rejected != 0 {
		t.Fatalf("second sync: %+v; want nothing sent", again)
	}
	mate.sync(t)
	lines := mate.lines(t)
	sameLines(t, "agent and teammate", lines, a.lines(t))
	sameLines(t, "hub and teammate", hubLines(t, h, "cd88"), lines)
	for _, p := range append(persons, ui) {
		name := p.(*domain.Beneficiary).Prenom
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, name) }) {
			t.Errorf("%s lost on the teammate", name)
		}
	}
}
