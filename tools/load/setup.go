package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"numeribus/hub/certs"
	"numeribus/hub/store"
	"numeribus/hub/store/postgres"
	"numeribus/hub/store/sqlite"
	"numeribus/hub/syncserver"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// setupConcurrency bounds the enrollments and the idle connections made
// at once: setup is not measured, and a thousand TLS handshakes at the
// same instant would only slow it down.
const setupConcurrency = 32

// hubDBFile is the SQLite file of a hub data directory (hub/cli.DBFile).
const hubDBFile = "hub.db"

// openStore opens the hub's store directly, as `hub serve` does, from
// the generator's process: to write the enrollments before the hub
// starts, and to read the outcome after it stopped.
func openStore(ctx context.Context, dir, db string) (store.Store, error) {
	if db != "" {
		return postgres.Open(ctx, db, postgres.Options{})
	}
	return sqlite.Open(ctx, filepath.Join(dir, hubDBFile), sqlite.Options{})
}

// prepareDirs makes the hubs' data directories: one certificate and one
// envelope key made in the first and copied to the others, as instances
// behind one address share them (README, "several hubs").
func prepareDirs(work string, n int) ([]string, error) {
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = filepath.Join(work, fmt.Sprintf("hub%d", i))
		if err := os.MkdirAll(dirs[i], 0o700); err != nil {
			return nil, err
		}
	}
	if _, _, err := certs.LoadOrCreate(dirs[0]); err != nil {
		return nil, fmt.Errorf("making the hub's certificate: %w", err)
	}
	if _, err := certs.LoadOrCreateEnvelopeKey(dirs[0]); err != nil {
		return nil, fmt.Errorf("making the hub's envelope key: %w", err)
	}
	for _, d := range dirs[1:] {
		for _, f := range []string{certs.CertFile, certs.KeyFile, certs.EnvelopeFile} {
			b, err := os.ReadFile(filepath.Join(dirs[0], f))
			if err != nil {
				return nil, err
			}
			if err := os.WriteFile(filepath.Join(d, f), b, 0o600); err != nil {
				return nil, err
			}
		}
	}
	return dirs, nil
}

// newAgents makes the simulated agents: keys, a device id, a name and a
// team (round-robin), an enrollment token, and their changes.
func newAgents(cfg config) ([]*agent, error) {
	pool := activityPool(cfg)
	agents := make([]*agent, cfg.agents)
	for i := range agents {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		a := &agent{
			i: i, id: ident.New().String(), name: fmt.Sprintf("load-%05d", i), team: i % cfg.teams,
			key: key, token: make([]byte, 32), lastSeq: map[string]uint64{},
		}
		rand.Read(a.token)
		if a.changes, err = changesOf(pool, i, cfg.changes); err != nil {
			return nil, fmt.Errorf("%s: %w", a.name, err)
		}
		agents[i] = a
	}
	if cfg.dropLastBatch {
		agents[0].dropLast = true
	}
	return agents, nil
}

func teamName(t int) string { return fmt.Sprintf("equipe-%02d", t) }

// activityPool generates realistic activities (internal/fixture: codes
// from the domain's lists, real communes, individual sessions and
// workshops) for the agents to record; activities need no consent, so
// every change is one the hub must take.
func activityPool(cfg config) []*domain.Activity {
	n := min(max(cfg.changes, 1)*4, 5000)
	return fixture.Generate(fixture.Options{N: n, Seed: cfg.seed}).Activities
}

// changesOf builds agent i's changes: activities of the pool under fresh
// ids, each with a fresh stamp of the agent's clock and seqs 1..n, in
// wire form, as the agent's outbox would send them.
func changesOf(pool []*domain.Activity, i, n int) ([]wire.Change, error) {
	clock := hlc.New(nil, 0)
	out := make([]wire.Change, n)
	for k := range out {
		act := *pool[(i*n+k)%len(pool)]
		act.ID = ident.New()
		fields, err := change.Encode(&act)
		if err != nil {
			return nil, err
		}
		c := change.Change{Kind: domain.KindActivity, ID: act.ID, Op: change.OpUpsert, Fields: fields,
			HLC: clock.Now(), Seq: uint64(k + 1)}
		if out[k], err = wire.FromChange(&c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// createEnrollments writes every agent's enrollment straight into the
// hub's store before the hub starts, token hashed as the hub hashes it:
// a thousand `hub enroll` processes would take minutes.
func createEnrollments(ctx context.Context, dir, db string, agents []*agent) error {
	st, err := openStore(ctx, dir, db)
	if err != nil {
		return fmt.Errorf("opening the hub's store: %w", err)
	}
	defer st.Close()
	exp := time.Now().Add(24 * time.Hour)
	for _, a := range agents {
		e := store.Enrollment{TokenHash: syncserver.TokenHash(a.token), Name: a.name, Team: teamName(a.team), ExpiresAt: exp}
		if err := st.CreateEnrollment(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// enrollAll enrolls every agent through the real protocol (wire.Enroll
// with its token): setup, not measured.
func enrollAll(ctx context.Context, h *hubProc, agents []*agent) error {
	return forEach(ctx, agents, func(ctx context.Context, a *agent) error { return enroll(ctx, h, a) })
}

// forEach runs fn for every agent, setupConcurrency at a time, and
// returns the first error (the others are cancelled).
func forEach(ctx context.Context, agents []*agent, fn func(context.Context, *agent) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, setupConcurrency)
	var wg sync.WaitGroup
	for _, a := range agents {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, a); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

func enroll(ctx context.Context, h *hubProc, a *agent) error {
	var err error
	for try := range 5 {
		if err = enrollOnce(ctx, h, a); err == nil || ctx.Err() != nil {
			return err
		}
		if re, ok := errors.AsType[*remoteError](err); ok && !(re.Code == wire.CodeBusy || re.Code == wire.CodeInternal) {
			return fmt.Errorf("enrolling %s: %w", a.name, err)
		}
		sleep(ctx, jitter(firstBackoff<<try))
	}
	return fmt.Errorf("enrolling %s: %w", a.name, err)
}

var pushKeyOnce sync.Once
var pushPub ed25519.PublicKey

func enrollOnce(ctx context.Context, h *hubProc, a *agent) error {
	s, err := dialOnly(ctx, h)
	if err != nil {
		return err
	}
	defer s.close()
	// Push-only sessions are not simulated: every agent shares one push
	// key, which the hub only stores.
	pushKeyOnce.Do(func() { pushPub, _, _ = ed25519.GenerateKey(rand.Reader) })
	s.ws.SetReadDeadline(time.Now().Add(handshakeTimeout))
	if err := s.send(&wire.Enroll{Proto: wire.ProtocolVersion, Token: a.token, Device: a.id,
		DeviceKey: a.key.Public().(ed25519.PublicKey), PushKey: pushPub, AgentVersion: "load"}); err != nil {
		return err
	}
	m, err := s.readOne()
	if err != nil {
		return err
	}
	ok, isOK := m.(*wire.Enrolled)
	if !isOK {
		return fmt.Errorf("hub sent %v instead of an enrollment answer", m.Type())
	}
	if ok.Name != a.name || ok.Team != teamName(a.team) {
		return fmt.Errorf("enrolled as %s of %s, expected %s of %s", ok.Name, ok.Team, a.name, teamName(a.team))
	}
	return nil
}
