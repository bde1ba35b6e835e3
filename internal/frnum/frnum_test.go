package frnum

import (
	"strings"
	"testing"
)

// t writes the expected strings with "_" for the narrow no-break space.
func thin(s string) string { return strings.ReplaceAll(s, "_", Thin) }

func TestInt(t *testing.T) {
	for _, tc := range []struct {
		in   int64
		want string
	}{
		{0, "0"}, {7, "7"}, {999, "999"}, {1000, "1_000"}, {12345, "12_345"}, {1234567, "1_234_567"},
		{-1, "−1"}, {-1234, "−1_234"},
	} {
		if got := Int(tc.in); got != thin(tc.want) {
			t.Errorf("Int(%d) = %q, want %q", tc.in, got, thin(tc.want))
		}
	}
	if got := Int(uint64(1_000_000)); got != thin("1_000_000") {
		t.Errorf("Int(uint64) = %q", got)
	}
}

func TestDec(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		dec  int
		want string
	}{
		{300.6, 1, "300,6"}, {0, 1, "0,0"}, {12.25, 1, "12,2"}, {12.26, 1, "12,3"}, {1234.5, 1, "1_234,5"},
		{1234567.891, 2, "1_234_567,89"}, {-3.5, 1, "−3,5"}, {-0.01, 1, "0,0"}, {42, 0, "42"},
	} {
		if got := Dec(tc.in, tc.dec); got != thin(tc.want) {
			t.Errorf("Dec(%v, %d) = %q, want %q", tc.in, tc.dec, got, thin(tc.want))
		}
	}
}

func TestPct(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0.1061, "10,6_%"}, {0, "0,0_%"}, {1, "100,0_%"}, {0.5, "50,0_%"}, {12.345, "1_234,5_%"},
	} {
		if got := Pct(tc.in); got != thin(tc.want) {
			t.Errorf("Pct(%v) = %q, want %q", tc.in, got, thin(tc.want))
		}
	}
}
