package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
)

// enroll registers a device of team in s.
func enroll(t *testing.T, s *Store, name, team string) string {
	t.Helper()
	ctx := context.Background()
	tok := sha256.Sum256([]byte(name))
	if err := s.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("k"), PushKey: []byte("p")}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// tourStops returns n changes creating tour stops, from seq from+1.
func tourStops(t *testing.T, from uint64, n int) []change.Change {
	t.Helper()
	cs := make([]change.Change, n)
	for i := range cs {
		s := &domain.TourStop{ID: ident.New(), Vehicule: "Numéribus 1", Date: "2026-03-02", Lieu: "Mairie", Commune: "88413"}
		f, err := change.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = change.Change{Kind: domain.KindTourStop, ID: s.ID, Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(time.Now()) + hlc.Timestamp(i), Seq: from + uint64(i) + 1}
	}
	return cs
}

// A pull never steps over a change that commits late. Writers of several
// devices commit batches with random delays between taking their hub
// seqs and committing, while a reader pages through the log after its
// cursor, as agents and the facts follower do: every change must reach
// the reader, none twice. With numbers taken at insert (a sequence), a
// batch numbered early and committed late falls behind a cursor that
// already passed it, and is missed for good.
func TestPullsMissNoChangeCommittedLate(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	const writers, batches, per = 4, 12, 5
	devices := make([]string, writers)
	for i := range devices {
		devices[i] = enroll(t, s, fmt.Sprintf("bus-%d", i), "cd88")
	}
	reader := enroll(t, s, "reader", "cd88")
	s.beforeCommit = func(string) { time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond) }

	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for _, dev := range devices {
		wg.Go(func() {
			for b := range batches {
				if _, _, err := s.ApplyBatch(ctx, dev, tourStops(t, uint64(b*per), per), 100); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[uint64]bool{}
	var cursor uint64
	pull := func() {
		cs, next, _, err := s.ChangesSince(ctx, "cd88", reader, cursor, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if seen[c.HubSeq] {
				t.Fatalf("change %d pulled twice", c.HubSeq)
			}
			seen[c.HubSeq] = true
		}
		cursor = next
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		pull()
		select {
		case <-done:
			pull() // what committed last
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			if want := writers * batches * per; len(seen) != want {
				t.Fatalf("the reader saw %d changes of %d: a change committed late was stepped over", len(seen), want)
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("writers not done in 60 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Two instances serving one device (a reconnection landing on the other)
// apply a batch and its retry at once: the device's seqs are applied
// once, none skipped.
func TestOneDeviceOnTwoInstances(t *testing.T) {
	s1, url := open(t)
	s2, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ctx := context.Background()
	dev := enroll(t, s1, "bus-1", "cd88")
	s1.beforeCommit = func(string) { time.Sleep(20 * time.Millisecond) }
	var cs []change.Change
	for b := range 20 {
		cs = append(cs, tourStops(t, uint64(b*10), 10)...)
	}
	var wg sync.WaitGroup
	for _, s := range []*Store{s1, s2} {
		wg.Go(func() {
			for b := 0; b < len(cs); b += 10 {
				if _, _, err := s.ApplyBatch(ctx, dev, cs[b:b+10], 100); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var n, distinct, hwm int64
	if err := s1.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT c.dseq), max(d.hwm) FROM changes c JOIN devices d ON d.num = c.device WHERE d.id = $1`, dev).
		Scan(&n, &distinct, &hwm); err != nil {
		t.Fatal(err)
	}
	if n != int64(len(cs)) || distinct != n || hwm != n {
		t.Fatalf("%d changes logged, %d distinct, mark %d: want each of %d once", n, distinct, hwm, len(cs))
	}
}

// A log counter gone (a damaged or half-restored database) fails the
// batch: nothing committed, the device's mark where it was, rather than
// the mark moved over changes never logged.
func TestBatchWithoutTheLogCounterFails(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	dev := enroll(t, s, "bus-1", "cd88")
	if _, _, err := s.ApplyBatch(ctx, dev, tourStops(t, 0, 3), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM log_counter`); err != nil {
		t.Fatal(err)
	}
	if hwm, n, err := s.ApplyBatch(ctx, dev, tourStops(t, 3, 2), 0); err == nil {
		t.Fatalf("batch applied without a log counter: mark %d, %d applied", hwm, n)
	}
	d, err := s.Device(ctx, dev)
	if err != nil {
		t.Fatal(err)
	}
	var logged int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM changes`).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	if d.HWM != 3 || logged != 3 {
		t.Errorf("mark %d, %d changes logged; want 3, 3", d.HWM, logged)
	}
}
