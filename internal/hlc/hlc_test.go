package hlc

import (
	"sync"
	"testing"
	"time"
)

// fakeWall is a settable wall clock.
type fakeWall struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeWall) now() time.Time  { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeWall) set(t time.Time) { f.mu.Lock(); f.t = t; f.mu.Unlock() }

var base = time.Date(2026, 11, 23, 8, 30, 0, 0, time.UTC)

func TestNowFollowsWallClock(t *testing.T) {
	w := &fakeWall{t: base}
	c := New(w.now, 0)
	a := c.Now()
	if got, want := a.Millis(), base.UnixMilli(); got != want {
		t.Fatalf("Millis = %d, want %d", got, want)
	}
	w.set(base.Add(5 * time.Second))
	b := c.Now()
	if b.Millis() != base.Add(5*time.Second).UnixMilli() || b.Logical() != 0 {
		t.Fatalf("after wall moved: %v", b)
	}
}

func TestMonotonicWhenWallGoesBackwards(t *testing.T) {
	w := &fakeWall{t: base}
	c := New(w.now, 0)
	prev := c.Now()
	// Someone fixes a clock that was a year ahead: it jumps back a year.
	w.set(base.AddDate(-1, 0, 0))
	for i := 0; i < 200000; i++ { // more than 2^16: the counter must carry
		ts := c.Now()
		if ts <= prev {
			t.Fatalf("write %d: %v not after %v", i, ts, prev)
		}
		prev = ts
	}
	if prev.Millis()-base.UnixMilli() > 10 {
		t.Fatalf("carry drifted too far: %v", prev)
	}
}

func TestFrozenWallClock(t *testing.T) {
	w := &fakeWall{t: base}
	c := New(w.now, 0)
	seen := map[Timestamp]bool{}
	prev := Timestamp(0)
	for i := 0; i < 1000; i++ {
		ts := c.Now()
		if ts <= prev || seen[ts] {
			t.Fatalf("frozen clock gave non-increasing %v after %v", ts, prev)
		}
		seen[ts] = true
		prev = ts
	}
	if prev.Millis() != base.UnixMilli() || prev.Logical() != 999 {
		t.Fatalf("frozen clock: %v, want same ms with counter 999", prev)
	}
}

func TestRestartNeverGoesBack(t *testing.T) {
	w := &fakeWall{t: base.AddDate(1, 0, 0)} // a year ahead
	c := New(w.now, 0)
	last := c.Now()
	w.set(base) // clock fixed, process restarted with persisted last
	c2 := New(w.now, c.Last())
	if ts := c2.Now(); ts <= last {
		t.Fatalf("restarted clock %v not after %v", ts, last)
	}
}

func TestObserveWithinTheBound(t *testing.T) {
	ahead := &fakeWall{t: base.Add(MaxAhead - time.Minute)}
	here := &fakeWall{t: base}
	a := New(ahead.now, 0)
	b := New(here.now, 0)
	ta := a.Now()
	skew := b.Observe(ta)
	if skew != MaxAhead-time.Minute {
		t.Fatalf("skew = %v, want %v", skew, MaxAhead-time.Minute)
	}
	if tb := b.Now(); tb <= ta {
		t.Fatalf("after observing, %v must order after %v", tb, ta)
	}
	// Observing an older timestamp does not move the clock back.
	last := a.Last()
	if a.Observe(Timestamp(1)); a.Last() != last {
		t.Fatalf("Observe of an old timestamp moved the clock")
	}
}

// A stamp beyond the bound (a hostile or broken device) is reported, but
// never drags the clock along: the next local stamp is real time.
func TestObserveBeyondTheBound(t *testing.T) {
	w := &fakeWall{t: base}
	c := New(w.now, 0)
	for _, remote := range []Timestamp{
		FromTime(base.Add(MaxAhead + time.Second)),
		FromTime(base.AddDate(50, 0, 0)),
		Max,
	} {
		if skew := c.Observe(remote); skew <= MaxAhead {
			t.Errorf("Observe(%v) skew = %v, want beyond %v", remote, skew, MaxAhead)
		}
		if got := c.Now(); got.Time().Sub(base) > time.Second {
			t.Fatalf("after observing %v, Now = %v: dragged beyond the bound", remote, got)
		}
	}
	if b := c.Bound(); b.Time().Sub(base) != MaxAhead {
		t.Fatalf("Bound = %v, want base + %v", b, MaxAhead)
	}
}

// A clock persisted at Max (a store poisoned before stamps were bounded)
// still gives usable, storable stamps.
func TestPoisonedClockStaysUsable(t *testing.T) {
	w := &fakeWall{t: base}
	for _, last := range []Timestamp{Max, Max - 1, 1 << 63, 1<<64 - 1} {
		c := New(w.now, last)
		for i := 0; i < 3; i++ {
			if ts := c.Now(); ts > Max || ts == 0 {
				t.Fatalf("New(%d).Now() = %d: not storable as a signed integer", last, ts)
			}
		}
	}
}

func TestOffsetCorrectsWallClock(t *testing.T) {
	w := &fakeWall{t: base.AddDate(1, 0, 0)}
	c := New(w.now, 0)
	c.SetOffset(-base.AddDate(1, 0, 0).Sub(base))
	if got := c.Now().Time(); !got.Equal(base) {
		t.Fatalf("corrected Now = %v, want %v", got, base)
	}
	if c.Offset() >= 0 {
		t.Fatal("offset not kept")
	}
}

func TestCompareTieBreak(t *testing.T) {
	ts := FromTime(base)
	tests := []struct {
		a, b Stamp
		want int
	}{
		{Stamp{ts, "a"}, Stamp{ts + 1, "a"}, -1},
		{Stamp{ts + 1, "a"}, Stamp{ts, "z"}, 1},
		{Stamp{ts, "device-a"}, Stamp{ts, "device-b"}, -1},
		{Stamp{ts, "device-b"}, Stamp{ts, "device-a"}, 1},
		{Stamp{ts, "x"}, Stamp{ts, "x"}, 0},
	}
	for _, tt := range tests {
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare(%v, %v) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Compare(tt.b, tt.a); got != -tt.want {
			t.Errorf("Compare not antisymmetric for %v, %v", tt.a, tt.b)
		}
	}
	if !(Stamp{ts, "b"}).After(Stamp{ts, "a"}) {
		t.Error("After")
	}
}

func TestConcurrentNowIsUnique(t *testing.T) {
	c := New(nil, 0)
	var mu sync.Mutex
	seen := map[Timestamp]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				ts := c.Now()
				mu.Lock()
				if seen[ts] {
					t.Errorf("duplicate %v", ts)
				}
				seen[ts] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func TestString(t *testing.T) {
	if got, want := (FromTime(base) + 3).String(), "2026-11-23T08:30:00.000Z/3"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}
