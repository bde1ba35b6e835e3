package accounts

import (
	"slices"
	"strings"
	"testing"
	"time"

	"numeribus/internal/territoire"
)

// cheap keeps the tests fast; the format and the check are the same.
var cheap = Params{Memory: 64, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword([]byte("correct horse battery"), cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q does not carry its parameters", h)
	}
	if ok, err := VerifyPassword(h, []byte("correct horse battery")); err != nil || !ok {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(h, []byte("correct horse batterz")); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := HashPassword([]byte("correct horse battery"), cheap)
	if h2 == h {
		t.Fatal("same salt twice")
	}
	if _, err := VerifyPassword("$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA", []byte("x")); err == nil {
		t.Fatal("zero memory accepted")
	}
	if err := CheckPasswordStrength([]byte("court")); err == nil {
		t.Fatal("short password accepted")
	}
}

func TestLimiterBacksOffExponentially(t *testing.T) {
	l := NewLimiter()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := 0; i < DefaultFreeFailures; i++ {
		if w := l.Wait("a@b.fr", now); w != 0 {
			t.Fatalf("attempt %d must not wait, waits %s", i+1, w)
		}
		l.Fail("a@b.fr", now)
	}
	if w := l.Wait("a@b.fr", now); w != time.Minute {
		t.Fatalf("after %d failures: wait %s, want 1m", DefaultFreeFailures, w)
	}
	l.Fail("a@b.fr", now)
	if w := l.Wait("a@b.fr", now); w != 2*time.Minute {
		t.Fatalf("next failure: wait %s, want 2m", w)
	}
	if w := l.Wait("a@b.fr", now.Add(2*time.Minute)); w != 0 {
		t.Fatalf("after the delay: wait %s", w)
	}
	if w := l.Wait("other@b.fr", now); w != 0 {
		t.Fatal("another key is slowed down")
	}
	for i := 0; i < 40; i++ {
		l.Fail("a@b.fr", now)
	}
	if w := l.Wait("a@b.fr", now); w != DefaultMaxDelay {
		t.Fatalf("capped wait %s", w)
	}
	l.Succeed("a@b.fr")
	if w := l.Wait("a@b.fr", now); w != 0 {
		t.Fatal("success does not clear")
	}
}

func TestTerritories(t *testing.T) {
	x := territoire.Default()
	got, err := CheckTerritories(x, RoleCoordinator, []string{"54,2a", "54395"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "2A 54 54395" {
		t.Fatalf("cleaned: %v", got)
	}
	if _, err := CheckTerritories(x, RoleCoordinator, nil); err == nil {
		t.Fatal("coordinator without territory accepted")
	}
	if got, err := CheckTerritories(x, RoleCoordinator, []string{"dep:88", "epci:245400676"}); err != nil || !slices.Equal(got, []string{"245400676", "88"}) {
		t.Errorf("prefixed codes: %v, %v", got, err)
	}
	if _, err := CheckTerritories(x, RoleCoordinator, []string{"com:54"}); err == nil {
		t.Error("com: with a département code accepted")
	}
	if _, err := CheckTerritories(x, RoleCoordinator, []string{"99999"}); err == nil {
		t.Fatal("unknown code accepted")
	}
	if k, _ := ClassifyTerritory(x, "54395"); k != Commune {
		t.Fatalf("54395 is a %s", k)
	}
}

func TestSessionExpiry(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	s := Session{Created: t0, LastSeen: t0}
	if s.Expired(t0.Add(IdleTimeout - time.Second)) {
		t.Fatal("expired before idle timeout")
	}
	if !s.Expired(t0.Add(IdleTimeout)) {
		t.Fatal("idle session not expired")
	}
	s.LastSeen = t0.Add(AbsoluteTimeout - time.Minute)
	if !s.Expired(t0.Add(AbsoluteTimeout)) {
		t.Fatal("session outlives the absolute timeout")
	}
}

// A generated password is long enough to be accepted, drawn from the
// unambiguous alphabet in groups of four, and different each time.
func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		p, err := GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckPasswordStrength([]byte(p)); err != nil {
			t.Fatalf("%q: %v", p, err)
		}
		groups := strings.Split(p, "-")
		if len(groups) != 4 {
			t.Fatalf("%q: want 4 groups", p)
		}
		for _, g := range groups {
			if len(g) != 4 || strings.Trim(g, passwordAlphabet) != "" {
				t.Fatalf("%q: group %q", p, g)
			}
		}
		if seen[p] {
			t.Fatalf("%q drawn twice", p)
		}
		seen[p] = true
	}
}
