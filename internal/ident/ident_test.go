package ident

import (
	"encoding/json"
	"testing"
	"time"
)

func TestNewIsV7AndOrdered(t *testing.T) {
	prev := New()
	for i := 0; i < 10000; i++ {
		id := New()
		if id.Version() != 7 || id[8]>>6 != 2 {
			t.Fatalf("%v: version %d variant %b", id, id.Version(), id[8]>>6)
		}
		if id.String() <= prev.String() {
			t.Fatalf("ids not increasing: %v then %v", prev, id)
		}
		prev = id
	}
	if d := time.Since(prev.Time()); d < -time.Second || d > time.Second {
		t.Fatalf("embedded time off by %v", d)
	}
}

func TestDeriveIsDeterministic(t *testing.T) {
	at := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	a, b := Derive(at, "activity", "line"), Derive(at, "activity", "line")
	if a != b {
		t.Fatal("same input, different ids")
	}
	if Derive(at, "activity", "linf") == a || Derive(at, "activityl", "ine") == a {
		t.Fatal("different input, same id")
	}
	if a.Version() != 7 || !a.Time().Equal(at) {
		t.Fatalf("derived id %v: version %d time %v", a, a.Version(), a.Time())
	}
}

func TestParseRoundTrip(t *testing.T) {
	id := New()
	got, err := Parse(id.String())
	if err != nil || got != id {
		t.Fatalf("Parse(%q) = %v, %v", id.String(), got, err)
	}
	for _, bad := range []string{"", "nope", "0190a0a0-0000-7000-8000-00000000000g", "0190a0a000007000800000000000000000"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	j, _ := json.Marshal(struct{ ID ID }{id})
	var back struct{ ID ID }
	if err := json.Unmarshal(j, &back); err != nil || back.ID != id {
		t.Fatalf("JSON round trip: %s -> %v, %v", j, back.ID, err)
	}
}
