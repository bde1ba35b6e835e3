package e2e

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"numeribus/agent/store"
	"numeribus/agent/syncclient"
	hubcli "numeribus/hub/cli"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/ident"
	"numeribus/internal/sqlitex"
	"numeribus/internal/wire"
)

// TestJepsenConverge is the convergence test outside testers run against
// sync products, sized down: agents of one team edit shared records at
// random (the same field, different fields, deletions, erasures, new
// records) while the links are cut at random bytes, the hub and an agent
// are SIGKILLed mid-sync, agents and the hub are restored from copies of
// their data directories, and clocks are off by up to an hour. Then the
// faults stop, everyone syncs until a round changes nothing, and the test
// checks that every agent and the hub hold the same records, that each
// record holds what a model of the run allows (a causal model: a value
// overwritten by a write made after it was seen must not come back; a
// deletion or an erasure that was not lost holds everywhere; work lost
// with a restored disk stays lost), that the hub logged each change of
// each device once, and that another team sees nothing of it.
//
// The seed is logged; NUMERIBUS_JEPSEN_SEED=<seed> runs the same
// operations and faults again (the moments of the kills follow the
// progress of the sync, so a rerun is close, not byte for byte).
// NUMERIBUS_SOAK=<duration> (make soak) runs larger rounds with fresh
// seeds until the duration is spent.
func TestJepsenConverge(t *testing.T) {
	if testing.Short() {
		t.Skip("kills real processes; run without -short")
	}
	seed, fixed := jepsenSeed(t)
	soak := os.Getenv("NUMERIBUS_SOAK")
	if soak == "" {
		runJepsen(t, seed, jepsenSmall)
		return
	}
	d, err := time.ParseDuration(soak)
	if err != nil {
		t.Fatalf("NUMERIBUS_SOAK=%q: %v", soak, err)
	}
	began := time.Now()
	end := began.Add(d)
	rounds := 0
	for round := 1; round == 1 || time.Now().Before(end); round++ {
		s := seed
		if round > 1 || !fixed {
			s = rand.Uint64()
		}
		ok := t.Run(fmt.Sprintf("round-%d-seed-%d", round, s), func(t *testing.T) { runJepsen(t, s, jepsenLarge) })
		if !ok {
			t.Fatalf("soak round %d failed; reproduce with NUMERIBUS_JEPSEN_SEED=%d NUMERIBUS_SOAK=1s make soak", round, s)
		}
		rounds++
	}
	t.Logf("soak: %d rounds in %v, all converged", rounds, time.Since(began).Round(time.Second))
}

func jepsenSeed(t *testing.T) (uint64, bool) {
	if v := os.Getenv("NUMERIBUS_JEPSEN_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("NUMERIBUS_JEPSEN_SEED=%q: %v", v, err)
		}
		return s, true
	}
	return rand.Uint64(), false
}

// jepsenSize sizes one run.
type jepsenSize struct {
	team       int // agents of the team under test
	activities int // fixture activities (with their stops, people, consents, assessments)
	ops        int // random operations on records
	bulk       int // records saved at once before a kill mid-sync
	hot        int // records that take half the edits, so that edits collide
	kills      int // at most this many kills of the hub, and of an agent (0: no limit)
}

var (
	jepsenSmall = jepsenSize{team: 3, activities: 10, ops: 140, bulk: 200, hot: 5, kills: 2}
	jepsenLarge = jepsenSize{team: 4, activities: 30, ops: 400, bulk: 500, hot: 8, kills: 6}
)

const (
	jTeam  = "cd88"
	jOther = "cd23"
)

// opSet is a set of operation numbers.
type opSet []uint64

func (s opSet) has(i int) bool { return i/64 < len(s) && s[i/64]&(1<<(i%64)) != 0 }

func (s *opSet) add(i int) {
	for len(*s) <= i/64 {
		*s = append(*s, 0)
	}
	(*s)[i/64] |= 1 << (i % 64)
}

func (s *opSet) union(o opSet) {
	for len(*s) < len(o) {
		*s = append(*s, 0)
	}
	for i, w := range o {
		(*s)[i] |= w
	}
}

type opKind int

const (
	opCreate opKind = iota
	opEdit
	opDelete
	opErase
	opBulk
)

// jOp is one operation an agent did, as the model knows it.
type jOp struct {
	id     int
	agent  *jAgent
	kind   opKind
	rec    ident.ID
	field  string            // edit
	value  string            // edit: the value written
	values map[string]string // create: the modelled fields
	ids    []ident.ID        // bulk
	// seen holds the operations the agent held when it did this one: its
	// clock had seen them, so this write orders after them everywhere.
	seen opSet
	// lost: made after the copy its agent was restored to, and never
	// offered to the hub: gone with the disk it was on.
	lost bool
	// dropped: the event (see jepsen.epoch) at which its agent's disk
	// was last restored to a copy without it; 0 if never.
	dropped int
}

// jRec is a record of the team as the model knows it.
type jRec struct {
	id      ident.ID
	kind    domain.Kind
	create  *jOp
	writes  map[string][]*jOp // field → the ops that wrote it (create included)
	deletes []*jOp
	erases  []*jOp // ops that erased this record's personal fields
}

// jField is a field the test edits and checks.
type jField struct {
	name     string
	personal bool
	get      func(domain.Record) string
	set      func(r domain.Record, v jVal)
}

type jVal struct {
	tag string // unique: agent and operation
	n   int    // the operation number
	rng *rand.Rand
}

func (v jVal) pick(l ...string) string { return l[v.rng.IntN(len(l))] }

var jCommunes = []string{"88413", "88160", "54395", "23096", "48095"}

var jFields = map[domain.Kind][]jField{
	domain.KindTourStop: {
		{name: "lieu", get: func(r domain.Record) string { return r.(*domain.TourStop).Lieu },
			set: func(r domain.Record, v jVal) { r.(*domain.TourStop).Lieu = "Lieu " + v.tag }},
		{name: "vehicule", get: func(r domain.Record) string { return r.(*domain.TourStop).Vehicule },
			set: func(r domain.Record, v jVal) { r.(*domain.TourStop).Vehicule = "Numéribus " + v.tag }},
		// Any start below any end: edits of both never make a stop invalid.
		{name: "heure_debut", get: func(r domain.Record) string { return r.(*domain.TourStop).HeureDebut },
			set: func(r domain.Record, v jVal) {
				r.(*domain.TourStop).HeureDebut = v.pick("07:00", "07:15", "07:30", "07:45")
			}},
		{name: "heure_fin", get: func(r domain.Record) string { return r.(*domain.TourStop).HeureFin },
			set: func(r domain.Record, v jVal) {
				r.(*domain.TourStop).HeureFin = v.pick("19:00", "19:15", "19:30", "19:45")
			}},
		{name: "realise", get: func(r domain.Record) string { return strconv.FormatBool(r.(*domain.TourStop).Realise) },
			set: func(r domain.Record, v jVal) { s := r.(*domain.TourStop); s.Realise = !s.Realise }},
	},
	domain.KindBeneficiary: {
		{name: "genre", get: func(r domain.Record) string { return r.(*domain.Beneficiary).Genre },
			set: func(r domain.Record, v jVal) {
				r.(*domain.Beneficiary).Genre = v.pick("masculin", "feminin", "non_communique")
			}},
		{name: "statut_social", get: func(r domain.Record) string { return r.(*domain.Beneficiary).StatutSocial },
			set: func(r domain.Record, v jVal) {
				r.(*domain.Beneficiary).StatutSocial = v.pick("scolarise", "sans_emploi", "en_emploi", "retraite", "non_communique")
			}},
		{name: "commune", get: func(r domain.Record) string { return r.(*domain.Beneficiary).Commune },
			set: func(r domain.Record, v jVal) { r.(*domain.Beneficiary).Commune = v.pick(jCommunes...) }},
		{name: "nom", personal: true, get: func(r domain.Record) string { return r.(*domain.Beneficiary).Nom },
			set: func(r domain.Record, v jVal) { r.(*domain.Beneficiary).Nom = "Nom " + v.tag }},
		{name: "telephone", personal: true, get: func(r domain.Record) string { return r.(*domain.Beneficiary).Telephone },
			set: func(r domain.Record, v jVal) { r.(*domain.Beneficiary).Telephone = fmt.Sprintf("06%08d", v.n) }},
		{name: "notes", personal: true, get: func(r domain.Record) string { return r.(*domain.Beneficiary).Notes },
			set: func(r domain.Record, v jVal) { r.(*domain.Beneficiary).Notes = "Note " + v.tag }},
	},
	domain.KindActivity: {
		{name: "duree", get: func(r domain.Record) string { return strconv.Itoa(r.(*domain.Activity).Duree) },
			set: func(r domain.Record, v jVal) { r.(*domain.Activity).Duree = 1 + v.n%domain.MaxDuree }},
		{name: "mediateur", get: func(r domain.Record) string { return r.(*domain.Activity).Mediateur },
			set: func(r domain.Record, v jVal) { r.(*domain.Activity).Mediateur = "Médiateur " + v.tag }},
		{name: "notes", personal: true, get: func(r domain.Record) string { return r.(*domain.Activity).Notes },
			set: func(r domain.Record, v jVal) { r.(*domain.Activity).Notes = "Séance " + v.tag }},
	},
	domain.KindAssessment: {
		{name: "mediateur", get: func(r domain.Record) string { return r.(*domain.Assessment).Mediateur },
			set: func(r domain.Record, v jVal) { r.(*domain.Assessment).Mediateur = "Médiateur " + v.tag }},
		{name: "commentaire", personal: true, get: func(r domain.Record) string { return r.(*domain.Assessment).Commentaire },
			set: func(r domain.Record, v jVal) { r.(*domain.Assessment).Commentaire = "Commentaire " + v.tag }},
	},
	domain.KindConsent: nil, // changed by withdrawals only: existence is checked, not fields
}

// jAgent is a test agent with what the model knows of its store.
type jAgent struct {
	*testAgent
	team     string
	offset   time.Duration
	wall     func() time.Time
	killable bool  // right clock: can run as a child process (agent sync) and be killed
	own      opSet // every op it made
	has      opSet // ops its records surely reflect (its own, and all the hub surely had at its last complete round)
	log      opSet // its own ops in its outbox log: what it sends again to a hub that went back
	tried    opSet // ops it held when a round started: they may have reached the hub
	backup   *jBackup
	bdir     string
	tally    jTally
}

type jBackup struct{ has, log opSet }

type jTally struct{ ok, failed int }

// jepsen is one run.
type jepsen struct {
	t      *testing.T
	ctx    context.Context
	seed   uint64
	size   jepsenSize
	rng    *rand.Rand
	hp     *hubProc
	h      *testHub
	proxy  *cutProxy
	team   []*jAgent
	other  *jAgent
	all    []*jAgent
	ops    []*jOp
	recs   map[ident.ID]*jRec
	order  []ident.ID // recs in creation order: editable pool
	hot    []ident.ID
	bulkID map[ident.ID]*jOp
	// links: people → their activities and assessments (never edited).
	acts, assess map[ident.ID][]ident.ID
	consents     map[ident.ID][]ident.ID
	otherIDs     []ident.ID
	setupOps     int // ops of the setup: the shared records' creation

	hub         opSet // ops the hub surely holds
	hubBackup   *opSet
	hubBackupAt int // epoch of the hub's copy
	hubBdir     string
	epoch       int              // counts copies and restores
	wantHub     bool             // a forced hub restore waits for its moment
	hubPending  map[*jAgent]bool // after a hub restore: agents yet to complete a round

	trace  []string // the faults in order, printed when a check fails
	kills  map[string]int
	n      map[string]int // what was done, for the summary
	spent  map[string]time.Duration
	errs   map[string]int
	remote []string
}

func runJepsen(t *testing.T, seed uint64, size jepsenSize) {
	start := time.Now()
	t.Logf("seed %d (NUMERIBUS_JEPSEN_SEED=%d reruns it), size %+v", seed, seed, size)
	j := &jepsen{t: t, ctx: context.Background(), seed: seed, size: size,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		recs: map[ident.ID]*jRec{}, bulkID: map[ident.ID]*jOp{},
		acts: map[ident.ID][]ident.ID{}, assess: map[ident.ID][]ident.ID{}, consents: map[ident.ID][]ident.ID{},
		n: map[string]int{}, spent: map[string]time.Duration{}, kills: map[string]int{}, errs: map[string]int{}, hubPending: map[*jAgent]bool{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("seed %d, what happened:\n%s", seed, strings.Join(j.trace, "\n"))
		}
	})
	j.setup()
	j.faults()
	faulted := time.Since(start)
	j.heal()
	j.check()
	j.summary(faulted, time.Since(start))
}

func (j *jepsen) setup() {
	t := j.t
	j.hp = &hubProc{dir: t.TempDir(), addr: freePort(t)}
	j.hp.start(t)
	t.Cleanup(j.hp.kill)
	j.h = &testHub{t: t, dir: j.hp.dir, logs: &syncBuffer{}}
	j.hubBdir = filepath.Join(t.TempDir(), "hub-backup")
	j.proxy = startCutProxy(t, j.hp.addr, 1000, 16000, j.rng.Uint64())

	for i := range j.size.team {
		var off time.Duration
		if i > 0 && (i != 3 || j.rng.IntN(2) == 0) {
			// Off by up to 55 minutes either way, never within the
			// restamping threshold of right.
			off = time.Duration(3+j.rng.IntN(53)) * time.Minute
			if j.rng.IntN(2) == 0 {
				off = -off
			}
			off += time.Duration(j.rng.IntN(60000)) * time.Millisecond
		}
		j.team = append(j.team, j.newAgent(fmt.Sprintf("bus-%d", i+1), jTeam, off))
	}
	j.other = j.newAgent("bus-9", jOther, time.Duration(j.rng.IntN(3600))*time.Second-30*time.Minute)
	j.all = append(slices.Clone(j.team), j.other)

	// The shared records: made by the first agent, synced to all.
	set := fixture.Generate(fixture.Options{N: j.size.activities, Seed: j.rng.Uint64(), Equipe: jTeam})
	a0 := j.team[0]
	recs := set.Records()
	a0.save(t, recs...)
	for _, r := range recs {
		j.created(a0, r)
	}
	for _, a := range set.Activities {
		if a.Beneficiaire != nil {
			j.acts[*a.Beneficiaire] = append(j.acts[*a.Beneficiaire], a.ID)
		}
	}
	for _, a := range set.Assessments {
		j.assess[a.Beneficiaire] = append(j.assess[a.Beneficiaire], a.ID)
	}
	for _, c := range set.Consents {
		j.consents[c.Beneficiaire] = append(j.consents[c.Beneficiaire], c.ID)
	}
	other := fixture.Generate(fixture.Options{N: 5, Seed: j.rng.Uint64(), Equipe: jOther}).Records()
	j.other.save(t, other...)
	for _, r := range other {
		j.otherIDs = append(j.otherIDs, r.RecordID())
	}
	for _, a := range j.all {
		j.noteSync(a, a.sync(t), nil)
	}
	j.setupOps = len(j.ops)
	for _, id := range j.order {
		if j.recs[id].kind != domain.KindConsent && len(j.hot) < j.size.hot && j.rng.IntN(3) == 0 {
			j.hot = append(j.hot, id)
		}
	}
	var offs []string
	for _, a := range j.all {
		offs = append(offs, fmt.Sprintf("%s %+v", a.name, a.offset.Round(time.Second)))
	}
	t.Logf("setup: %d shared records, %d of team %s; clocks: %s", len(j.order), len(j.otherIDs), jOther, strings.Join(offs, ", "))
}

func (j *jepsen) newAgent(name, team string, off time.Duration) *jAgent {
	wall := func() time.Time { return time.Now().Add(off) }
	a := &jAgent{testAgent: newAgent(j.t, j.h, name, team, wall), team: team, offset: off, wall: wall, killable: off == 0,
		bdir: filepath.Join(j.t.TempDir(), name+"-backup")}
	a.cl.BatchBytes = 4 << 10 // many batches and pages: cuts land inside them
	a.cl.PullBudget = 8 << 10
	a.cl.Window = 1 + j.rng.IntN(4)
	a.cl.AnswerTimeout = 10 * time.Second
	return a
}

// reopen opens the store in the agent's directory again, unlocked, with
// its clock.
func (a *jAgent) reopen(t *testing.T) {
	t.Helper()
	st, err := store.Open(context.Background(), a.dir, store.Options{KDF: testKDF, Wall: a.wall})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Unlock(context.Background(), []byte(pass)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a.st, a.cl.Store = st, st
}

// newOp registers an operation a just did.
func (j *jepsen) newOp(a *jAgent, kind opKind, rec ident.ID) *jOp {
	op := &jOp{id: len(j.ops), agent: a, kind: kind, rec: rec, seen: slices.Clone(a.has)}
	j.ops = append(j.ops, op)
	a.own.add(op.id)
	a.has.add(op.id)
	a.log.add(op.id)
	return op
}

// created registers the creation of r (saved, so normalized) by a.
func (j *jepsen) created(a *jAgent, r domain.Record) {
	op := j.newOp(a, opCreate, r.RecordID())
	op.values = map[string]string{}
	rec := &jRec{id: r.RecordID(), kind: r.Kind(), create: op, writes: map[string][]*jOp{}}
	for _, f := range jFields[r.Kind()] {
		op.values[f.name] = f.get(r)
		rec.writes[f.name] = append(rec.writes[f.name], op)
	}
	j.recs[rec.id] = rec
	j.order = append(j.order, rec.id)
	j.n["op create"]++
}

// pick returns a record for an edit: a hot one half of the time.
func (j *jepsen) pick() *jRec {
	if len(j.hot) > 0 && j.rng.IntN(2) == 0 {
		return j.recs[j.hot[j.rng.IntN(len(j.hot))]]
	}
	return j.recs[j.order[j.rng.IntN(len(j.order))]]
}

func (j *jepsen) faults() {
	size := j.size.ops
	// Each kind of fault happens at least once, at a seeded moment in its
	// window; more of them come at random. A forced fault that cannot
	// happen yet (nothing to restore, a restore that would be unsafe)
	// stays due and is tried again after each operation.
	forced := map[int][]string{}
	for _, f := range []struct {
		what     string
		from, to float64
	}{{"backup-agent", 0, .15}, {"restore-agent", .2, .35}, {"kill-hub", .25, .6}, {"backup-hub", .4, .5},
		{"restore-hub", .55, .7}, {"kill-agent", .6, .85}} {
		from, to := int(f.from*float64(size)), int(f.to*float64(size))
		i := from + j.rng.IntN(to-from)
		forced[i] = append(forced[i], f.what)
	}
	var due []string
	step := func() {
		due = slices.DeleteFunc(due, func(f string) bool { return j.fault(f, true) })
		if j.rng.IntN(100) < 45 {
			j.fault("", false)
		}
	}
	for i := range size {
		j.operate()
		due = append(due, forced[i]...)
		step()
	}
	for tries := 0; len(due) > 0; tries++ {
		if tries > 100 {
			j.t.Fatalf("forced faults never possible: %v", due)
		}
		j.operate()
		for _, a := range j.all {
			j.try(a, false)
		}
		step()
	}
	if len(j.remote) > 0 {
		j.t.Fatalf("the hub refused rounds during the faults (no fault here should make it refuse): %v", j.remote)
	}
}

// operate does one random operation on a random agent.
func (j *jepsen) operate() {
	ctx := j.ctx
	if j.rng.IntN(100) < 7 {
		j.otherOp()
		return
	}
	a := j.team[j.rng.IntN(len(j.team))]
	switch r := j.rng.IntN(100); {
	case r < 64:
		j.edit(a)
	case r < 76:
		var rec domain.Record
		if j.rng.IntN(2) == 0 {
			rec = &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 2", Date: "2026-04-01", Lieu: "Lieu neuf " + a.name,
				Commune: jCommunes[j.rng.IntN(len(jCommunes))], HeureDebut: "09:00", HeureFin: "12:00", Equipe: jTeam}
		} else {
			rec = &domain.Beneficiary{ID: ident.New(), Genre: "feminin", Commune: jCommunes[j.rng.IntN(len(jCommunes))], StatutSocial: "retraite"}
		}
		if _, err := a.st.Save(ctx, rec); err != nil {
			j.t.Fatalf("%s: creating a record: %v", a.name, err)
		}
		j.created(a, rec)
	case r < 84:
		rec := j.deletable()
		res, err := a.st.Delete(ctx, rec.id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			j.n["skip: not here yet"]++
		case err != nil:
			j.t.Fatalf("%s: delete: %v", a.name, err)
		case res.Updated == 0:
			j.n["skip: already deleted"]++
		default:
			rec.deletes = append(rec.deletes, j.newOp(a, opDelete, rec.id))
			j.n["op delete"]++
		}
	default:
		j.erase(a)
	}
}

// deletable picks a record to delete: mostly one nothing refers to (an
// activity, an assessment, a record made during the run), as a deleted
// stop or person makes the edits of what refers to it invalid.
func (j *jepsen) deletable() *jRec {
	for range 20 {
		rec := j.recs[j.order[j.rng.IntN(len(j.order))]]
		if rec.kind == domain.KindActivity || rec.kind == domain.KindAssessment || rec.create.id >= j.setupOps {
			return rec
		}
	}
	return j.recs[j.order[j.rng.IntN(len(j.order))]]
}

func (j *jepsen) edit(a *jAgent) {
	rec := j.pick()
	fields := jFields[rec.kind]
	if len(fields) == 0 {
		j.n["skip: consent"]++
		return
	}
	it, err := a.st.Get(j.ctx, rec.id)
	if errors.Is(err, store.ErrNotFound) {
		j.n["skip: not here yet"]++
		return
	}
	if err != nil {
		j.t.Fatalf("%s: get: %v", a.name, err)
	}
	if it.Deleted {
		j.n["skip: deleted here"]++
		return
	}
	f := fields[j.rng.IntN(len(fields))]
	if b, ok := it.Record.(*domain.Beneficiary); ok && f.personal && !b.Identified() {
		f = fields[j.rng.IntN(3)] // an anonymous person: no consent for identity
	}
	id := len(j.ops)
	f.set(it.Record, jVal{tag: fmt.Sprintf("%s-%d", a.name, id), n: id, rng: j.rng})
	res, err := a.st.Save(j.ctx, it.Record)
	if err != nil {
		// The record as this agent holds it refuses the edit (its stop or
		// person deleted, its consent withdrawn): the mediator sees the
		// error; nothing is written.
		j.n["skip: refused by validation"]++
		return
	}
	if res.Updated == 0 {
		j.n["skip: same value"]++
		return
	}
	op := j.newOp(a, opEdit, rec.id)
	op.field, op.value = f.name, f.get(it.Record)
	rec.writes[f.name] = append(rec.writes[f.name], op)
	j.n["op edit "+string(rec.kind)]++
}

// erase erases a person: at their request, or by withdrawing their consent.
func (j *jepsen) erase(a *jAgent) {
	var people []ident.ID
	for _, id := range j.order {
		if j.recs[id].kind == domain.KindBeneficiary {
			people = append(people, id)
		}
	}
	b := people[j.rng.IntN(len(people))]
	identity, assessments := true, true
	if cs := j.consents[b]; len(cs) > 0 && j.rng.IntN(2) == 0 {
		var fin []string
		if j.rng.IntN(3) == 0 {
			fin = []string{j.pickStr(domain.FinaliteSuivi, domain.FinaliteDiagnostic)}
		}
		eff, err := a.st.WithdrawConsent(j.ctx, cs[j.rng.IntN(len(cs))], fin, "2026-06-01")
		if err != nil {
			j.n["skip: withdrawal refused"]++
			return
		}
		j.n["op withdraw consent"]++
		identity, assessments = eff.EraseIdentity, eff.EraseAssessments
	} else {
		res, err := a.st.EraseBeneficiary(j.ctx, b)
		if err != nil {
			j.n["skip: erasure refused"]++
			return
		}
		if res.Updated == 0 {
			j.n["skip: already erased"]++
			return
		}
	}
	if !identity && !assessments {
		return
	}
	op := j.newOp(a, opErase, b)
	var targets []ident.ID
	if identity {
		targets = append([]ident.ID{b}, j.acts[b]...)
	}
	if assessments {
		targets = append(targets, j.assess[b]...)
	}
	for _, id := range targets {
		j.recs[id].erases = append(j.recs[id].erases, op)
	}
	j.n["op erase"]++
}

// event notes a fault in the trace, with the agent's outbox and the hub's
// mark for it.
func (j *jepsen) event(a *jAgent, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if a != nil {
		last, acked, _ := a.st.Seqs(j.ctx)
		msg = fmt.Sprintf("%s: %s (last %d, acked %d, hub hwm %d)", a.name, msg, last, acked, j.hwm(a))
	}
	j.trace = append(j.trace, fmt.Sprintf("op %d: %s", len(j.ops), msg))
}

func (j *jepsen) pickStr(l ...string) string { return l[j.rng.IntN(len(l))] }

// otherOp: the other team records on its own (not modelled record by
// record: it must simply converge with the hub and stay apart).
func (j *jepsen) otherOp() {
	a := j.other
	if j.rng.IntN(2) == 0 {
		it, err := a.st.Get(j.ctx, j.otherIDs[j.rng.IntN(len(j.otherIDs))])
		if err != nil {
			j.t.Fatal(err)
		}
		if s, ok := it.Record.(*domain.TourStop); ok {
			s.Lieu = fmt.Sprintf("Lieu cd23 %d", len(j.ops)+j.rng.IntN(1000))
			if _, err := a.st.Save(j.ctx, s); err != nil {
				j.t.Fatal(err)
			}
			j.n["op other team"]++
			return
		}
	}
	s := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 23", Date: "2026-05-01", Lieu: "Place cd23", Commune: "23096", Equipe: jOther}
	if _, err := a.st.Save(j.ctx, s); err != nil {
		j.t.Fatal(err)
	}
	j.otherIDs = append(j.otherIDs, s.ID)
	j.n["op other team"]++
}

// bulk saves many new stops on a, so that its next push lasts.
func (j *jepsen) bulk(a *jAgent) {
	recs := stops(j.size.bulk/2 + j.rng.IntN(j.size.bulk))
	a.save(j.t, recs...)
	op := j.newOp(a, opBulk, ident.Nil)
	for _, r := range recs {
		op.ids = append(op.ids, r.RecordID())
		j.bulkID[r.RecordID()] = op
	}
	j.n["op bulk save"]++
	j.n["records in bulk saves"] += len(recs)
}

// fault does the named fault, or one at random, and reports whether it
// happened.
func (j *jepsen) fault(what string, forced bool) bool {
	if what == "" {
		r := j.rng.IntN(100)
		switch {
		case r < 38:
			what = "sync"
		case r < 74:
			what = "sync-cut"
		case r < 78:
			what = "sync-all-cut"
		case r < 84:
			what = "backup-agent"
		case r < 90:
			what = "restore-agent"
		case r < 93:
			what = "kill-hub"
		case r < 95:
			what = "kill-agent"
		case r < 97:
			what = "backup-hub"
		default:
			what = "restore-hub"
		}
	}
	defer func(start time.Time) { j.spent[what] += time.Since(start) }(time.Now())
	anyAgent := func() *jAgent { return j.all[j.rng.IntN(len(j.all))] }
	teamAgent := func() *jAgent { return j.team[j.rng.IntN(len(j.team))] }
	switch what {
	case "sync":
		j.try(anyAgent(), false)
	case "sync-cut":
		j.try(anyAgent(), true)
	case "sync-all-cut":
		for _, a := range j.all {
			j.try(a, true)
		}
	case "backup-agent":
		j.backupAgent(teamAgent())
	case "restore-agent":
		// Not while a forced hub restore waits (it would keep it unsafe),
		// nor an agent that has not sent again what a restored hub lost.
		var can []*jAgent
		for _, a := range j.team {
			if a.backup != nil && !j.hubPending[a] && (forced || !j.wantHub) {
				can = append(can, a)
			}
		}
		if len(can) == 0 {
			j.n["skip: agent restore"]++
			return false
		}
		j.restoreAgent(can[j.rng.IntN(len(can))])
	case "kill-hub":
		if !forced && j.size.kills > 0 && j.kills["hub"] >= j.size.kills {
			j.n["skip: kill"]++
			return false
		}
		j.kills["hub"]++
		j.killHub()
	case "kill-agent":
		if !forced && j.size.kills > 0 && j.kills["agent"] >= j.size.kills {
			j.n["skip: kill"]++
			return false
		}
		j.kills["agent"]++
		var can []*jAgent
		for _, a := range j.team {
			if a.killable {
				can = append(can, a)
			}
		}
		j.killAgent(can[j.rng.IntN(len(can))])
	case "backup-hub":
		j.backupHub()
		if forced {
			j.wantHub = true
		}
	case "restore-hub":
		if !j.hubRestoreSafe() {
			j.n["skip: hub restore"]++
			if forced {
				// A fresh copy: what agents lost before it cannot be
				// missing from it.
				j.backupHub()
				j.wantHub = true
			}
			return false
		}
		j.restoreHub()
		j.wantHub = false
	default:
		j.t.Fatalf("unknown fault %q", what)
	}
	return true
}

// hubRestoreSafe reports whether restoring the hub's copy now keeps every
// change in the log of an agent that will send it again, as this run's
// model of the logs knows them. The hub loses what it took since the copy;
// each agent sends again what its log holds. A change an agent lost with a
// restored disk after the copy, then pulled back, is logged again at its
// number (store.ApplyRemote, relog) and so is sent again too — but the
// model does not follow that (TestHubBackAfterAnAgentPulledItsWorkBack
// does), so the run restores the hub only where the model can tell what
// every side must end with.
func (j *jepsen) hubRestoreSafe() bool {
	if j.hubBackup == nil {
		return false
	}
	for _, op := range j.ops {
		if !op.lost && op.dropped > j.hubBackupAt && !op.agent.log.has(op.id) && !j.hubBackup.has(op.id) {
			return false
		}
	}
	return true
}

// try runs a round that may fail, directly or through the cutting proxy.
func (j *jepsen) try(a *jAgent, cut bool) {
	a.tried.union(a.has)
	if cut {
		a.cl.URL = "wss://" + j.proxy.addr() + "/sync"
		j.n["rounds through the cutting proxy"]++
	} else {
		j.n["rounds direct"]++
	}
	rep, err := a.cl.Sync(j.ctx)
	a.cl.URL = ""
	j.noteSync(a, rep, err)
	j.event(a, "round (cut %v): %v %+v", cut, err, rep)
}

// noteSync updates the model after a round of a: a complete round pushed
// all it held of its own and pulled all the hub held.
func (j *jepsen) noteSync(a *jAgent, rep syncclient.Report, err error) {
	j.n["rounds"]++
	if err != nil {
		a.tally.failed++
		j.n["rounds failed"]++
		var re *syncclient.RemoteError
		switch {
		case errors.As(err, &re):
			j.remote = append(j.remote, a.name+": "+err.Error())
		case errors.Is(err, syncclient.ErrUnreachable):
			j.errs["unreachable (cut, hub down)"]++
		default:
			msg := err.Error()
			if i := strings.IndexAny(msg, "0123456789"); i > 0 {
				msg = msg[:i]
			}
			j.errs[msg]++
		}
		return
	}
	a.tally.ok++
	j.n["rounds complete"]++
	j.n["changes renumbered (store restored)"] += rep.Renumbered
	j.n["changes sent again (hub restored)"] += int(rep.Resent)
	j.n["changes restamped (clock)"] += rep.Restamped
	if rep.PullReset {
		j.n["pulls reset (hub restored)"]++
	}
	if a.team != jTeam {
		delete(j.hubPending, a)
		return
	}
	j.hub.union(a.log)
	a.has.union(j.hub)
	delete(j.hubPending, a)
}

func (j *jepsen) backupAgent(a *jAgent) {
	a.st.Close()
	copyDir(j.t, a.dir, a.bdir)
	a.reopen(j.t)
	a.backup = &jBackup{has: slices.Clone(a.has), log: slices.Clone(a.log)}
	j.n["agent copies taken"]++
	j.event(a, "copy of its data directory taken")
}

func (j *jepsen) restoreAgent(a *jAgent) {
	a.st.Close()
	copyDir(j.t, a.bdir, a.dir)
	a.reopen(j.t)
	lost := 0
	j.epoch++
	for _, op := range j.ops {
		if op.agent == a && a.log.has(op.id) && !a.backup.log.has(op.id) {
			op.dropped = j.epoch
			if !a.tried.has(op.id) {
				op.lost = true
				lost++
			}
		}
	}
	// Its own changes that reached the hub come back by the pull, into
	// its records but not into its log.
	a.has, a.log = slices.Clone(a.backup.has), slices.Clone(a.backup.log)
	j.event(a, "restored from its copy; %d ops lost", lost)
	j.n["agents restored from a copy"]++
	j.n["ops lost with a restored disk (never sent)"] += lost
}

func (j *jepsen) hwm(a *jAgent) int {
	_, _, hwm := hubCount(j.t, j.h, a.st.Device())
	return hwm
}

// waitFor polls cond until it holds, done delivers, or the deadline.
func waitFor[T any](cond func() bool, done chan T, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case v := <-done:
			done <- v
			return
		default:
		}
		if cond() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type jRound struct {
	rep syncclient.Report
	err error
}

// killHub SIGKILLs the hub in the middle of a round: while an agent
// pushes a bulk save, or while another pulls it.
func (j *jepsen) killHub() {
	a := j.team[j.rng.IntN(len(j.team))]
	j.bulk(a)
	var cond func() bool
	mode := "push"
	if j.rng.IntN(2) == 0 {
		// Pull: the bulk reaches the hub first, then another agent is
		// killed in the middle of pulling it.
		j.try(a, false)
		b := j.team[(slices.Index(j.team, a)+1+j.rng.IntN(len(j.team)-1))%len(j.team)]
		ss, err := b.st.SyncState(j.ctx)
		if err != nil {
			j.t.Fatal(err)
		}
		from, step := ss.PullCursor, uint64(1+j.rng.IntN(j.size.bulk/2))
		cond = func() bool {
			s, err := b.st.SyncState(j.ctx)
			return err == nil && s.PullCursor > from+step
		}
		a, mode = b, "pull"
	} else {
		from, step := j.hwm(a), 1+j.rng.IntN(j.size.bulk/2)
		cond = func() bool { return j.hwm(a) >= from+step }
	}
	a.tried.union(a.has)
	done := make(chan jRound, 1)
	go func() {
		rep, err := a.cl.Sync(j.ctx)
		done <- jRound{rep, err}
	}()
	waitFor(cond, done, 30*time.Second)
	j.hp.kill()
	r := <-done
	if r.err == nil {
		j.n["hub kills after the round ended"]++
	} else {
		j.n["hub kills mid-"+mode]++
	}
	j.noteSync(a, r.rep, r.err)
	j.event(a, "hub killed mid-%s: %v", mode, r.err)
	integrity(j.t, filepath.Join(j.hp.dir, hubcli.DBFile))
	j.hp.start(j.t)
}

// killAgent runs a round of a right-clocked agent in a child process
// (agent sync) and SIGKILLs it in the middle of its push.
func (j *jepsen) killAgent(a *jAgent) {
	j.bulk(a)
	a.tried.union(a.has)
	device := a.st.Device()
	from, step := j.hwm(a), 1+j.rng.IntN(j.size.bulk/2)
	a.st.Close()
	cmd := child("agent", "sync", "--data", a.dir)
	if err := cmd.Start(); err != nil {
		j.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(func() bool {
		_, _, hwm := hubCount(j.t, j.h, device)
		return hwm >= from+step
	}, done, 30*time.Second)
	cmd.Process.Kill()
	err := <-done
	integrity(j.t, filepath.Join(a.dir, store.FileName))
	a.reopen(j.t)
	j.event(a, "killed mid-push: %v", err)
	if err == nil {
		j.n["agent kills after the round ended"]++
		j.noteSync(a, syncclient.Report{}, nil)
		return
	}
	j.n["agent kills mid-push"]++
	j.n["rounds"]++
	j.n["rounds failed"]++
	j.errs["killed"]++
}

func (j *jepsen) backupHub() {
	j.hp.kill()
	copyDir(j.t, j.hp.dir, j.hubBdir)
	j.hp.start(j.t)
	b := slices.Clone(j.hub)
	j.epoch++
	j.hubBackup, j.hubBackupAt = &b, j.epoch
	j.n["hub copies taken (killed, copied)"]++
	j.event(nil, "hub copy taken")
}

func (j *jepsen) restoreHub() {
	j.hp.kill()
	copyDir(j.t, j.hubBdir, j.hp.dir)
	j.hp.start(j.t)
	j.hub = slices.Clone(*j.hubBackup)
	for _, a := range j.all {
		j.hubPending[a] = true
	}
	j.n["hub restored from a copy"]++
	j.event(nil, "hub restored from its copy")
}

// heal: no more faults; every agent syncs until a round of all of them
// changes nothing.
func (j *jepsen) heal() {
	for round := 1; ; round++ {
		if round > 6 {
			j.t.Fatalf("no quiet round after %d rounds of every agent", round-1)
		}
		quiet := true
		for _, a := range j.all {
			a.cl.URL = ""
			rep, err := a.cl.Sync(j.ctx)
			if err != nil {
				j.t.Fatalf("heal round %d: %s: %v", round, a.name, err)
			}
			j.noteSync(a, rep, nil)
			if rep.Pushed > 0 || rep.Pulled > 0 || rep.Renumbered > 0 || rep.Resent > 0 || rep.PullReset {
				quiet = false
			}
		}
		if quiet {
			j.n["heal rounds"] = round
			return
		}
	}
}

// sure reports whether op must show everywhere after the heal: the hub
// holds it, or its agent will send it (again).
func (j *jepsen) sure(op *jOp) bool { return j.hub.has(op.id) || op.agent.log.has(op.id) }

func (j *jepsen) check() {
	t, ctx := j.t, j.ctx
	// Same records everywhere.
	ref := j.team[0].lines(t)
	for _, a := range j.team[1:] {
		sameLines(t, fmt.Sprintf("%s and %s", a.name, j.team[0].name), a.lines(t), ref)
	}
	sameLines(t, "hub and "+j.team[0].name, hubLines(t, j.h, jTeam), ref)
	sameLines(t, "hub and "+j.other.name+" (team "+jOther+")", hubLines(t, j.h, jOther), j.other.lines(t))
	refDel := agentTombstones(t, j.team[0])
	for _, a := range j.team[1:] {
		sameLines(t, "deleted records of "+a.name, agentTombstones(t, a), refDel)
	}
	sameLines(t, "deleted records of the hub", hubTombstones(t, j.h, jTeam), refDel)

	// Nothing doubled: each change of each device logged once, or
	// refused once. The one refusal these edits may earn is an identity
	// edit or an assessment racing the withdrawal of its consent on
	// another laptop (no_consent): any other is a bug.
	for _, a := range j.all {
		c, d, hwm := hubCount(t, j.h, a.st.Device())
		refused := hubRefused(t, j.h, a.st.Device())
		last, acked, err := a.st.Seqs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for code, n := range refused {
			if code != wire.CodeNoConsent {
				t.Fatalf("%s: the hub refused %d changes with %s", a.name, n, code)
			}
			j.n["changes refused: no consent (a withdrawal raced)"] += n
		}
		if c != d || c+refused[wire.CodeNoConsent] != hwm || uint64(hwm) != last || last != acked {
			t.Fatalf("%s: hub logged %d changes (%d distinct), refused %v, hwm %d; agent last %d acked %d", a.name, c, d, refused, hwm, last, acked)
		}
		if ss, _ := a.st.SyncState(ctx); ss.Recovering {
			t.Fatalf("%s still recovering after the heal", a.name)
		}
	}

	// Teams apart.
	team := map[ident.ID]bool{}
	for _, a := range j.team {
		for _, id := range agentIDs(t, a) {
			team[id] = true
		}
	}
	otherHeld := agentIDs(t, j.other)
	for _, id := range otherHeld {
		if team[id] {
			t.Fatalf("record %s is held by both teams", id)
		}
	}
	for _, id := range j.otherIDs {
		if !slices.Contains(otherHeld, id) {
			t.Fatalf("team %s lost its record %s", jOther, id)
		}
	}
	if len(otherHeld) != len(j.otherIDs) {
		t.Fatalf("team %s holds %d records, made %d", jOther, len(otherHeld), len(j.otherIDs))
	}

	// Every live record is one the model knows.
	a0 := j.team[0]
	for _, id := range agentIDs(t, a0) {
		if j.recs[id] == nil && j.bulkID[id] == nil {
			t.Fatalf("%s holds record %s that no operation made", a0.name, id)
		}
	}
	// Bulk saves: all there, or (lost with a disk) none.
	for _, op := range j.ops {
		if op.kind != opBulk {
			continue
		}
		n := 0
		for _, id := range op.ids {
			if _, err := a0.st.Get(ctx, id); err == nil {
				n++
			}
		}
		switch {
		case j.sure(op) && n != len(op.ids), op.lost && n != 0:
			t.Fatalf("bulk save %d by %s (sure %v, lost %v): %d of %d records", op.id, op.agent.name, j.sure(op), op.lost, n, len(op.ids))
		}
	}
	// Each record: there or not, deleted or not, erased or not, and each
	// field a value the run allows.
	for _, id := range j.order {
		j.checkRecord(j.recs[id])
	}
}

func (j *jepsen) checkRecord(rec *jRec) {
	t, ctx := j.t, j.ctx
	anySure := func(ops []*jOp) (sure, maybe bool) {
		for _, op := range ops {
			if op.lost {
				continue
			}
			if j.sure(op) {
				sure = true
			} else {
				maybe = true
			}
		}
		return
	}
	for _, a := range j.team {
		it, err := a.st.Get(ctx, rec.id)
		found := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		what := fmt.Sprintf("%s %s on %s (created by %s)", rec.kind, rec.id, a.name, rec.create.agent.name)
		if rec.create.lost {
			if found {
				t.Fatalf("%s: made on a disk restored to an earlier copy, never sent, yet it exists", what)
			}
			continue
		}
		if !found {
			if j.sure(rec.create) {
				t.Fatalf("%s: lost", what)
			}
			continue
		}
		delSure, delMaybe := anySure(rec.deletes)
		if delSure && !it.Deleted {
			t.Fatalf("%s: deleted (op %d), yet live", what, rec.deletes[0].id)
		}
		if !delSure && !delMaybe && it.Deleted {
			t.Fatalf("%s: deleted, yet no delete survived", what)
		}
		if it.Deleted {
			continue
		}
		eraseSure, eraseMaybe := anySure(rec.erases)
		if eraseSure {
			if !it.Erased {
				t.Fatalf("%s: erased, yet not marked erased", what)
			}
			switch r := it.Record.(type) {
			case *domain.Beneficiary:
				if r.Identified() {
					t.Fatalf("%s: erased, yet identified: %+v", what, r)
				}
			case *domain.Activity:
				if r.Notes != "" {
					t.Fatalf("%s: erased, yet notes %q", what, r.Notes)
				}
			case *domain.Assessment:
				if r.Commentaire != "" || !r.Beneficiaire.IsZero() {
					t.Fatalf("%s: erased, yet comment %q and person %s", what, r.Commentaire, r.Beneficiaire)
				}
			}
		}
		for _, f := range jFields[rec.kind] {
			got := f.get(it.Record)
			allowed := j.allowed(rec, f.name)
			if f.personal && (eraseSure || eraseMaybe) {
				allowed = append(allowed, "")
			}
			if f.personal && eraseSure {
				allowed = []string{""}
			}
			if !slices.Contains(allowed, got) {
				var hist []string
				for _, w := range rec.writes[f.name] {
					hist = append(hist, fmt.Sprintf("op %d by %s %q sure=%v lost=%v", w.id, w.agent.name, w.valueOf(f.name), j.sure(w), w.lost))
				}
				t.Fatalf("%s: %s is %q, the run allows %q\nwrites: %s", what, f.name, got, allowed, strings.Join(hist, "; "))
			}
		}
	}
}

func (op *jOp) valueOf(field string) string {
	if op.kind == opCreate {
		return op.values[field]
	}
	return op.value
}

// allowed returns the values field of rec may end with: those of the
// writes that survive and that no surviving write made after seeing them
// overwrote. When one write follows all others, that is its value alone.
func (j *jepsen) allowed(rec *jRec, field string) []string {
	ws := rec.writes[field]
	var out []string
	for _, w := range ws {
		if w.lost {
			continue
		}
		over := false
		for _, w2 := range ws {
			if w2 != w && !w2.lost && j.sure(w2) && w2.seen.has(w.id) {
				over = true
				break
			}
		}
		if !over && !slices.Contains(out, w.valueOf(field)) {
			out = append(out, w.valueOf(field))
		}
	}
	return out
}

// concurrent counts, for the summary, the pairs of edits of one record
// made by two agents neither of which had seen the other's.
func (j *jepsen) concurrent() (sameField, otherField int) {
	for _, id := range j.order {
		var eds []*jOp
		for _, ws := range j.recs[id].writes {
			for _, w := range ws {
				if w.kind == opEdit && !w.lost {
					eds = append(eds, w)
				}
			}
		}
		for x := range eds {
			for _, w2 := range eds[x+1:] {
				w := eds[x]
				if w.agent == w2.agent || w.seen.has(w2.id) || w2.seen.has(w.id) {
					continue
				}
				if w.field == w2.field {
					sameField++
				} else {
					otherField++
				}
			}
		}
	}
	return
}

func (j *jepsen) summary(faulted, total time.Duration) {
	same, other := j.concurrent()
	j.n["concurrent edits, same field (pairs)"] = same
	j.n["concurrent edits, different fields (pairs)"] = other
	j.n["cuts by the proxy"] = int(j.proxy.cuts.Load())
	sure, lost, maybe := 0, 0, 0
	for _, op := range j.ops {
		switch {
		case op.lost:
			lost++
		case j.sure(op):
			sure++
		default:
			maybe++
		}
	}
	var lines []string
	keys := make([]string, 0, len(j.n))
	for k := range j.n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("  %-46s %d", k, j.n[k]))
	}
	var errs []string
	for k, v := range j.errs {
		errs = append(errs, fmt.Sprintf("%s ×%d", strings.TrimSpace(k), v))
	}
	sort.Strings(errs)
	var spent []string
	for k, v := range j.spent {
		spent = append(spent, fmt.Sprintf("%s %v", k, v.Round(time.Millisecond)))
	}
	sort.Strings(spent)
	var agents []string
	for _, a := range j.all {
		agents = append(agents, fmt.Sprintf("%s %d/%d", a.name, a.tally.ok, a.tally.ok+a.tally.failed))
	}
	j.t.Logf("seed %d: converged in %v (faults %v); %d ops: %d survived for sure, %d lost with a restored disk, %d maybe\n%s\n  failed rounds: %s\n  complete/all rounds per agent: %s\n  time per fault: %s",
		j.seed, total.Round(time.Millisecond), faulted.Round(time.Millisecond), len(j.ops), sure, lost, maybe,
		strings.Join(lines, "\n"), strings.Join(errs, ", "), strings.Join(agents, ", "), strings.Join(spent, ", "))
}

// agentIDs returns the ids of the agent's live records.
func agentIDs(t *testing.T, a *jAgent) []ident.ID {
	var out []ident.ID
	if err := a.st.List(context.Background(), "", false, func(it store.Item) error {
		out = append(out, it.Record.RecordID())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// agentTombstones returns the ids of the agent's deleted records, sorted.
func agentTombstones(t *testing.T, a *jAgent) []string {
	var out []string
	if err := a.st.List(context.Background(), "", true, func(it store.Item) error {
		if it.Deleted {
			out = append(out, it.Record.RecordID().String())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// hubTombstones returns the ids of the hub's deleted records of a team,
// sorted, read from its file.
func hubTombstones(t *testing.T, h *testHub, team string) []string {
	db, err := sql.Open("sqlite", sqlitex.DSN(filepath.Join(h.dir, hubcli.DBFile), true))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id FROM records WHERE team = ? AND deleted = 1`, team)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		var id ident.ID
		copy(id[:], b)
		out = append(out, id.String())
	}
	slices.Sort(out)
	return out
}

// The first bug TestJepsenConverge found (seed 10539162563525611011): an
// agent restored from a copy renumbers its changes after the hub's mark,
// which leaves its log without the numbers below; when the hub then went
// back too, renumbering "after 0" moved each change by the hub's mark
// instead of packing them after it, and the hub refused every later round
// with out_of_order (a gap after its mark): the agent's work never reached
// anyone again.
func TestBothSidesBackAfterARenumber(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	st := stops(5)
	a.save(t, st[0])
	copyA := filepath.Join(t.TempDir(), "a-copy")
	a.st.Close()
	copyDir(t, a.dir, copyA) // change 1, never sent
	a.reopen(t)
	a.sync(t)
	a.save(t, st[1], st[2])
	a.sync(t) // the hub holds a's changes 1 to 3

	h.stop()
	copyHub := filepath.Join(t.TempDir(), "hub-copy")
	copyDir(t, dir, copyHub)
	h = restartHub(t, dir, a, b)

	a.st.Close()
	copyDir(t, copyA, a.dir)
	a.reopen(t)
	a.save(t, st[3])                           // new work as change 2
	if rep := a.sync(t); rep.Renumbered == 0 { // changes 1, 2 become 4, 5
		t.Fatalf("the restored agent did not renumber: %+v", rep)
	}

	h.stop()
	copyDir(t, copyHub, dir) // the hub goes back to a's mark 3
	h = restartHub(t, dir, a, b)
	a.save(t, st[4])
	for _, ag := range []*testAgent{a, b, a} {
		ag.sync(t)
	}
	sameLines(t, "hub and agent", hubLines(t, h, "cd88"), a.lines(t))
	sameLines(t, "agents", b.lines(t), a.lines(t))
	if n := len(a.lines(t)); n != len(st) {
		t.Fatalf("agent holds %d records, want %d", n, len(st))
	}
	changes, distinct, hwm := hubCount(t, h, a.st.Device())
	last, acked, _ := a.st.Seqs(context.Background())
	if changes != distinct || changes != hwm || uint64(hwm) != last || last != acked {
		t.Fatalf("hub: %d changes (%d distinct), hwm %d; agent last %d acked %d", changes, distinct, hwm, last, acked)
	}
}

// Found by TestJepsenConverge (seed 6627222131414624384): a pulled change
// that wrote a field's current value again, with a later stamp, changed
// only the field's stamp; the merge reported no change, so the agent did
// not store it (nor let its clock see it). A write stamped in between,
// pulled next, then won on that agent and lost everywhere else: the agent
// diverged from the hub and its team for good.
func TestSameValueLaterStampIsKept(t *testing.T) {
	h := startHub(t)
	wall := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }
	// Clocks a second apart (well within the restamping threshold): the
	// three edits below are stamped in this order whatever the timing.
	p := newAgent(t, h, "bus-1", "cd88", wall(0))
	b := newAgent(t, h, "bus-2", "cd88", wall(time.Second))
	c := newAgent(t, h, "bus-3", "cd88", wall(2*time.Second))
	stop := stops(1)[0].(*domain.TourStop)
	p.save(t, stop)
	for _, a := range []*testAgent{p, b, c} {
		a.sync(t)
	}
	edit := func(a *testAgent, lieu string) {
		e := *stop
		e.Lieu = lieu
		a.save(t, &e)
	}
	edit(p, "Salle des fêtes") // t1
	p.sync(t)
	edit(b, "Médiathèque")     // t2, offline
	edit(c, "Salle des fêtes") // t3: the same value as t1, later
	c.sync(t)
	p.sync(t) // p holds the value at t1 and pulls it again at t3
	b.sync(t) // b pushes t2, which loses to t3
	for _, a := range []*testAgent{p, c, b} {
		a.sync(t)
	}
	for _, a := range []*testAgent{p, b, c} {
		it, err := a.st.Get(context.Background(), stop.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := it.Record.(*domain.TourStop).Lieu; got != "Salle des fêtes" {
			t.Errorf("%s: lieu %q, want the write of t3", a.name, got)
		}
	}
	sameLines(t, "hub and bus-1", hubLines(t, h, "cd88"), p.lines(t))
}

// Found by TestJepsenConverge (seed 9357622440462910440): an agent
// restored from a copy pulled its own lost changes back into its records
// but not into its log. When the hub then went back to a copy older than
// those changes, the agent could not send them again: the hub lost them
// for good while every agent held them, and the agent, whose log had a
// hole, sent its next change after a gap — out_of_order at every round
// from then on. Changes given back by the hub are now logged again at
// their numbers, and sent again when the hub goes back.
func TestHubBackAfterAnAgentPulledItsWorkBack(t *testing.T) {
	dir := t.TempDir()
	h := startHubIn(t, dir)
	a := newAgent(t, h, "bus-1", "cd88", nil)
	b := newAgent(t, h, "bus-2", "cd88", nil)
	st := stops(2)
	a.save(t, st[0])
	a.sync(t)
	copyA := filepath.Join(t.TempDir(), "a-copy")
	a.st.Close()
	copyDir(t, a.dir, copyA) // a's change 1, acknowledged
	a.reopen(t)

	h.stop()
	copyHub := filepath.Join(t.TempDir(), "hub-copy")
	copyDir(t, dir, copyHub) // the hub with a's change 1
	h = restartHub(t, dir, a, b)

	edited := *st[0].(*domain.TourStop)
	edited.Lieu = "Salle des fêtes"
	a.save(t, &edited) // change 2
	a.sync(t)
	b.sync(t) // b holds the edit

	a.st.Close()
	copyDir(t, copyA, a.dir) // a goes back to change 1…
	a.reopen(t)
	a.sync(t) // …and pulls its change 2 back, into its records only

	h.stop()
	copyDir(t, copyHub, dir) // the hub goes back to a's change 1
	h = restartHub(t, dir, a, b)
	a.save(t, st[1]) // new work: refused with out_of_order
	for _, ag := range []*testAgent{a, b, a, b} {
		ag.sync(t)
	}
	sameLines(t, "hub and b", hubLines(t, h, "cd88"), b.lines(t))
	sameLines(t, "hub and a", hubLines(t, h, "cd88"), a.lines(t))
	if n := len(a.lines(t)); n != len(st) {
		t.Fatalf("agent holds %d records, want %d", n, len(st))
	}
}
