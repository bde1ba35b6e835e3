package domain

import (
	"strings"
	"time"
)

// Hand-written matchers for the shapes validation checks on every record:
// each reports exactly what its regular expression, kept in match_test.go
// as the reference, reports (TestMatchersMatchReference,
// FuzzMatchers). Validation runs at each save and at the hub for each
// change it receives, beside its one SQLite writer (issue #13), where
// the regular expressions and time.Parse were a quarter of a record's
// validation.

// isPhone reports whether s is a phone number as validation takes it:
// ^\+?[0-9]{6,15}$.
func isPhone(s string) bool {
	s = strings.TrimPrefix(s, "+")
	if len(s) < 6 || len(s) > 15 {
		return false
	}
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// isEmail reports whether s is an address as validation takes it:
// ^[a-z0-9._%+'-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$ — a local part,
// one @, then at least two dot-separated labels, the last of two letters
// or more. Deliberately plain: one @, a dotted domain, no spaces.
func isEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at < 1 {
		return false
	}
	for i := range at {
		if c := s[i]; !isLower(c) && !isDigit(c) && !strings.ContainsRune("._%+'-", rune(c)) {
			return false
		}
	}
	host := s[at+1:]
	dot := strings.LastIndexByte(host, '.')
	if dot < 1 || len(host)-dot-1 < 2 {
		return false
	}
	for i := dot + 1; i < len(host); i++ {
		if !isLower(host[i]) {
			return false
		}
	}
	for label := range strings.SplitSeq(host[:dot], ".") {
		if label == "" {
			return false
		}
		for i := range len(label) {
			if c := label[i]; !isLower(c) && !isDigit(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

// isHHMM reports whether s is a time of day as validation takes it:
// ^([01][0-9]|2[0-3]):[0-5][0-9]$.
func isHHMM(s string) bool {
	if len(s) != 5 || s[2] != ':' || !isDigit(s[1]) || s[3] < '0' || s[3] > '5' || !isDigit(s[4]) {
		return false
	}
	return s[0] == '0' || s[0] == '1' || (s[0] == '2' && s[1] <= '3')
}

// isoDate reads s in DateLayout as time.Parse does; false when s is not
// a plain date of that layout (time.Parse then has the last word).
func isoDate(s string) (time.Time, bool) {
	if len(s) != len(DateLayout) || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	y, ok1 := number(s[:4])
	m, ok2 := number(s[5:7])
	d, ok3 := number(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d { // 31/02: time.Date rolls it over, time.Parse refuses it
		return time.Time{}, false
	}
	return t, true
}

// number reads the decimal digits s.
func number(s string) (int, bool) {
	n := 0
	for i := range len(s) {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
