package domain

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The regular expressions and parse the matchers of match.go stand for:
// their reference.
var (
	phoneRE = regexp.MustCompile(`^\+?[0-9]{6,15}$`)
	emailRE = regexp.MustCompile(`^[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$`)
	hhmmRE  = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
)

// referenceDate is ParseDate as it was, by time.Parse alone.
func referenceDate(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(DateLayout, s); err == nil {
		return t, true
	}
	if t, err := time.Parse("02/01/2006", s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// sameMatch fails t unless every matcher agrees with its reference on s.
func sameMatch(t *testing.T, s string) {
	t.Helper()
	for _, m := range []struct {
		name string
		got  func(string) bool
		re   *regexp.Regexp
	}{{"phone", isPhone, phoneRE}, {"email", isEmail, emailRE}, {"hh:mm", isHHMM, hhmmRE}} {
		if got, want := m.got(s), m.re.MatchString(s); got != want {
			t.Fatalf("%s %q: %v, the expression says %v", m.name, s, got, want)
		}
	}
	got, gok := ParseDate(s)
	want, wok := referenceDate(s)
	if gok != wok || got != want {
		t.Fatalf("date %q: %v %v, time.Parse says %v %v", s, got, gok, want, wok)
	}
}

// TestMatchersMatchReference: every day of a span around the period
// validation takes and every time of day, in every layout and with each
// byte changed, and edge cases of phones and addresses.
func TestMatchersMatchReference(t *testing.T) {
	var cases []string
	for d := time.Date(1999, 12, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2102; d = d.AddDate(0, 0, 1) {
		cases = append(cases, d.Format(DateLayout))
	}
	for _, y := range []int{0, 4, 100, 400, 1900, 2000, 2100, 2400, 9999} {
		for m := 0; m <= 13; m++ {
			for day := 0; day <= 32; day++ {
				cases = append(cases, fmt.Sprintf("%04d-%02d-%02d", y, m, day), fmt.Sprintf("%02d/%02d/%04d", day, m, y))
			}
		}
	}
	for h := range 26 {
		for m := range 62 {
			cases = append(cases, fmt.Sprintf("%02d:%02d", h, m))
		}
	}
	cases = append(cases, "", " 2026-11-23 ", "2026-11-23\n", "+2026-11-23", "2026-1-23", "2026-11-3", "２026-11-23",
		"123456", "12345", "+123456", "++123456", "123456789012345", "1234567890123456", "+1234567890123456", "06 12 34 56 78", "0612345678x",
		"a@b.fr", "a@b.c", "a@b", "@b.fr", "a@.fr", "a@b..fr", "a@b.fr.", "a.b@c.d.fr", "A@b.fr", "a@B.fr", "a@b.FR", "a@b.f1",
		"a@b@c.fr", "a b@c.fr", "o'neil+x%y_z-w@mairie-88.gouv.fr", "é@b.fr", "a@b-.fr", "a@-b.fr", "a@b.fr\n", "\xff@b.fr", "a@b.f\xff")
	for k, s := range cases {
		sameMatch(t, s)
		if k%17 != 0 && !strings.ContainsAny(s, "@:") && len(s) == 10 {
			continue // every byte changed in a sample of the dates only
		}
		for i := range len(s) {
			for _, c := range []byte{'0', '9', '-', '/', ':', '.', '@', 'a', 'Z', ' ', 0xc3} {
				sameMatch(t, s[:i]+string(c)+s[i+1:])
			}
			sameMatch(t, s[:i])
		}
	}
}

// FuzzMatchers compares the matchers with their references on any text.
//
//	go test ./internal/domain -run '^$' -fuzz FuzzMatchers -fuzztime 30s
func FuzzMatchers(f *testing.F) {
	for _, s := range []string{"2026-11-23", "23/11/2026", "29/02/2024", "08:30", "+33612345678", "a.b@c-d.fr"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { sameMatch(t, s) })
}
