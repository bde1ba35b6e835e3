package syncserver

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"numeribus/hub/store"
	"numeribus/hub/store/sqlite"
	"numeribus/internal/change"
	"numeribus/internal/fixture"
	"numeribus/internal/hlc"
	"numeribus/internal/ident"
	"numeribus/internal/wire"
)

// BenchmarkPullPage serves one full page (the default 1 MiB budget) of
// fixture records from a SQLite hub as pull does: ChangesSince, the wire
// changes, the encoded frame. What a thousand agents catching up at once
// cost the hub's cores.
//
//	go test ./hub/syncserver -run '^$' -bench PullPage -benchmem
func BenchmarkPullPage(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "hub.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	from, to := enrollIn(b, st, "bus-1", "cd88"), enrollIn(b, st, "bus-2", "cd88")
	fillLog(b, st, from.ID, 3<<20)
	const budget = 1 << 20
	b.ReportAllocs()
	size := 0
	for b.Loop() {
		ls, next, more, err := st.ChangesSince(ctx, to.Team, to.ID, 0, budget)
		if err != nil || !more {
			b.Fatalf("ChangesSince: more %v, %v", more, err)
		}
		out := &wire.Changes{Next: next, More: more, Changes: make([]wire.Change, 0, len(ls))}
		if out.Changes, err = appendWire(out.Changes, ls); err != nil {
			b.Fatal(err)
		}
		frame, err := wire.Encode(out)
		if err != nil {
			b.Fatal(err)
		}
		size = len(frame)
	}
	b.ReportMetric(float64(size), "frame-bytes")
}

// enrollIn enrolls a device named name in team.
func enrollIn(tb testing.TB, st store.Store, name, team string) store.Device {
	tb.Helper()
	ctx := context.Background()
	var tok [32]byte
	rand.Read(tok[:])
	now := time.Now()
	if err := st.CreateEnrollment(ctx, store.Enrollment{TokenHash: tok, Name: name, Team: team, ExpiresAt: now.Add(time.Hour)}); err != nil {
		tb.Fatal(err)
	}
	d, err := st.Enroll(ctx, tok, store.Device{ID: ident.New().String(), DeviceKey: []byte("dk"), PushKey: []byte("pk")}, now)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// fillLog logs fixture records of every kind made by device until their
// fields take about size bytes, and returns the changes, seqs from 1.
func fillLog(tb testing.TB, st store.Store, device string, size int) []change.Change {
	tb.Helper()
	set := fixture.Generate(fixture.Options{N: size / 100, Seed: 1})
	var cs []change.Change
	for i, r := range set.Records() {
		if size <= 0 {
			break
		}
		f, err := change.Encode(r)
		if err != nil {
			tb.Fatal(err)
		}
		size -= len(f.Encode())
		cs = append(cs, change.Change{Kind: r.Kind(), ID: r.RecordID(), Op: change.OpUpsert, Fields: f,
			HLC: hlc.FromTime(r.RecordID().Time()) + hlc.Timestamp(i), Seq: uint64(i + 1)})
	}
	for i := 0; i < len(cs); i += 1000 {
		if _, _, err := st.ApplyBatch(context.Background(), device, cs[i:min(i+1000, len(cs))], 0); err != nil {
			tb.Fatal(err)
		}
	}
	return cs
}
