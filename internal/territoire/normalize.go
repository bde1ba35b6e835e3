package territoire

import (
	"unicode"
	"unicode/utf8"
)

// Normalize folds a name for matching: lower case, accents removed (é→e,
// ç→c, œ→oe, æ→ae, ß→ss …), every run of characters that are neither letters
// nor digits (spaces, hyphens, apostrophes ' and ’, dots, parentheses …)
// becomes one space, the result is trimmed, and the words "saint" and
// "sainte" become "st" and "ste". So "St-Dié" and "Saint-Dié-des-Vosges" both
// start with "st die", and "L’Haÿ-les-Roses" gives "l hay les roses".
// Combining accents (decomposed input) are dropped too.
func Normalize(s string) string {
	return string(appendNormalized(make([]byte, 0, len(s)), s, true))
}

// AppendNormalized appends Normalize(string(s)) to dst without making a
// string of s: what the agent's name index folds are personal data, kept
// in byte slices it can wipe.
func AppendNormalized(dst, s []byte) []byte { return appendNormalized(dst, s, true) }

// appendNormalized appends the normalized form of s to dst. When abbreviate
// is false, "saint"/"sainte" are left as they are.
func appendNormalized[T string | []byte](dst []byte, s T, abbreviate bool) []byte {
	base := len(dst)
	word := -1 // start in dst of the word being written, -1 between words
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			default:
				if word >= 0 {
					dst = endWord(dst, word, abbreviate)
					word = -1
				}
				continue
			}
			if word < 0 {
				if len(dst) > base {
					dst = append(dst, ' ')
				}
				word = len(dst)
			}
			dst = append(dst, c)
			continue
		}
		var rb [utf8.UTFMax]byte // a rune is never longer
		r, size := utf8.DecodeRune(rb[:copy(rb[:], s[i:])])
		i += size
		rep, keep := foldRune(r)
		switch {
		case rep == "" && keep == 0: // combining mark: drop, the word goes on
			continue
		case rep == " ":
			if word >= 0 {
				dst = endWord(dst, word, abbreviate)
				word = -1
			}
			continue
		}
		if word < 0 {
			if len(dst) > base {
				dst = append(dst, ' ')
			}
			word = len(dst)
		}
		if rep != "" {
			dst = append(dst, rep...)
		} else {
			dst = utf8.AppendRune(dst, keep)
		}
	}
	if word >= 0 {
		dst = endWord(dst, word, abbreviate)
	}
	return dst
}

// endWord abbreviates the word dst[start:] if it is "saint" or "sainte".
func endWord(dst []byte, start int, abbreviate bool) []byte {
	if !abbreviate {
		return dst
	}
	switch string(dst[start:]) {
	case "saint":
		return append(dst[:start], "st"...)
	case "sainte":
		return append(dst[:start], "ste"...)
	}
	return dst
}

// foldRune folds a non-ASCII rune. It returns the lower-case unaccented
// spelling as rep, or rep " " for a separator, or rep "" with keep set to the
// lower-case rune to write as it is (letters and digits without a folding),
// or rep "" and keep 0 for a combining mark to drop.
func foldRune(r rune) (rep string, keep rune) {
	r = unicode.ToLower(r)
	switch r {
	case 'à', 'á', 'â', 'ã', 'ä', 'å', 'ā', 'ă', 'ą':
		return "a", 0
	case 'æ':
		return "ae", 0
	case 'ç', 'ć', 'ĉ', 'ċ', 'č':
		return "c", 0
	case 'ď', 'đ':
		return "d", 0
	case 'è', 'é', 'ê', 'ë', 'ē', 'ĕ', 'ė', 'ę', 'ě':
		return "e", 0
	case 'ĝ', 'ğ', 'ġ', 'ģ':
		return "g", 0
	case 'ì', 'í', 'î', 'ï', 'ĩ', 'ī', 'ĭ', 'į', 'ı':
		return "i", 0
	case 'ł', 'ľ', 'ĺ', 'ļ':
		return "l", 0
	case 'ñ', 'ń', 'ņ', 'ň':
		return "n", 0
	case 'ò', 'ó', 'ô', 'õ', 'ö', 'ø', 'ō', 'ŏ', 'ő':
		return "o", 0
	case 'œ':
		return "oe", 0
	case 'ŕ', 'ř':
		return "r", 0
	case 'ś', 'ŝ', 'ş', 'š':
		return "s", 0
	case 'ß':
		return "ss", 0
	case 'ţ', 'ť':
		return "t", 0
	case 'ù', 'ú', 'û', 'ü', 'ũ', 'ū', 'ŭ', 'ů', 'ű', 'ų':
		return "u", 0
	case 'ý', 'ÿ':
		return "y", 0
	case 'ź', 'ż', 'ž':
		return "z", 0
	case 'ʼ', 'ʻ', 'ʹ': // modifier-letter apostrophes are letters for unicode
		return " ", 0
	}
	if r < utf8.RuneSelf { // e.g. 'İ' lowers to 'i'; 'K' (Kelvin) to 'k'
		if 'a' <= r && r <= 'z' || '0' <= r && r <= '9' {
			return "", r
		}
		return " ", 0
	}
	if unicode.Is(unicode.Mn, r) {
		return "", 0
	}
	if unicode.IsLetter(r) || unicode.IsDigit(r) {
		return "", r
	}
	return " ", 0
}
