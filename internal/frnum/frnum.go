// Package frnum writes numbers the French way, for every surface that
// shows them to people: the dashboard's pages and the hub's command line
// (one format everywhere, so that "300,6 h" on a page is "300,6 h" in a
// terminal). Thousands are grouped with a narrow no-break space (U+202F,
// the Imprimerie nationale's rule, which also keeps "1 234" on one line),
// decimals follow a comma, and a percent sign is preceded by the same
// narrow space: 1 234, 12,5, 42,5 %. Negative numbers take a true minus
// sign (U+2212).
package frnum

import (
	"strconv"
	"strings"
)

// Thin is the narrow no-break space between groups of digits and before
// a unit sign (%).
const Thin = "\u202f"

// Int writes n with its thousands grouped: 12 345.
func Int[T ~int | ~int64 | ~int32 | ~uint64 | ~uint32 | ~uint](n T) string {
	neg := n < 0
	var d string
	if neg {
		d = strconv.FormatInt(-int64(n), 10)
	} else {
		d = strconv.FormatUint(uint64(n), 10)
	}
	return sign(neg) + group(d)
}

// Dec writes f with the given number of decimals, rounded, after a comma,
// its whole part grouped: 1 234,5.
func Dec(f float64, decimals int) string {
	s := strconv.FormatFloat(f, 'f', decimals, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, _ := strings.Cut(s, ".")
	if neg && strings.Trim(whole+frac, "0") == "" {
		neg = false // -0,0 is 0,0
	}
	out := sign(neg) + group(whole)
	if frac != "" {
		out += "," + frac
	}
	return out
}

// Pct writes a ratio (0..1) as a percentage with one decimal: 0.1061 is
// 10,6 %.
func Pct(ratio float64) string { return Dec(ratio*100, 1) + Thin + "%" }

func sign(neg bool) string {
	if neg {
		return "−"
	}
	return ""
}

// group puts a thin space between groups of three digits from the right.
func group(d string) string {
	if len(d) <= 3 {
		return d
	}
	var b strings.Builder
	for i, c := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			b.WriteString(Thin)
		}
		b.WriteRune(c)
	}
	return b.String()
}
