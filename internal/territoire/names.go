package territoire

import (
	"bytes"
	"strings"
)

// nameIndex finds communes by the words of their normalized names. Every
// word start of every name is listed once, in a bucket keyed by the word's
// first two bytes, so that a search reads one bucket (a few hundred entries,
// a few thousand for "st" or "de") rather than every name.
type nameIndex struct {
	// text is "\n" name₀ "\n" name₁ "\n" … "\n", nameᵢ being
	// Normalize(communes[i].Nom). A name holds no "\n" and the query
	// compared with it neither, so a match never runs into the next name.
	text string
	// start[i] is the offset of nameᵢ in text; start[len(communes)] is
	// len(text), so nameᵢ is text[start[i]:start[i+1]-1].
	start []int32
	// bucket[k] … bucket[k+1] delimit in words the word starts of key k.
	bucket []int32
	// words lists word starts by key, then in text order.
	words []wordRef
}

// wordRef is the start of a word in nameIndex.text.
type wordRef struct {
	at int32 // offset in text
	i  int32 // index of the commune in Index.communes
}

// Bucket keys: the first two bytes of a word, each folded to one of nsym
// symbols (Normalize output holds only a-z, 0-9, spaces, and rarely other
// letters as UTF-8).
const (
	symSpace = 36 // a space or "\n": the word has one byte
	symOther = 37 // a byte of a non-ASCII letter
	nsym     = 38
)

var symOf = func() (t [256]uint8) {
	for c := range t {
		switch {
		case 'a' <= c && c <= 'z':
			t[c] = uint8(c - 'a')
		case '0' <= c && c <= '9':
			t[c] = uint8(26 + c - '0')
		case c == ' ' || c == '\n':
			t[c] = symSpace
		default:
			t[c] = symOther
		}
	}
	return t
}()

// wordKey is the bucket of the word starting at text[at], which is followed
// by at least one byte (a name ends with "\n").
func wordKey(text string, at int) int {
	return int(symOf[text[at]])*nsym + int(symOf[text[at+1]])
}

// newNameIndex normalizes the names of communes; namesLen is the total
// length of their names, to size the buffers.
func newNameIndex(communes []Commune, namesLen int) nameIndex {
	var b strings.Builder
	b.Grow(1 + namesLen + namesLen/16 + len(communes))
	b.WriteByte('\n')
	start := make([]int32, len(communes)+1)
	scratch := make([]byte, 0, 128)
	// Word starts in text order, then sorted by key (counting sort).
	unsorted := make([]wordRef, 0, len(communes)*4)
	bucket := make([]int32, nsym*nsym+1)
	for i := range communes {
		at := b.Len()
		start[i] = int32(at)
		scratch = appendNormalized(scratch[:0], communes[i].Nom, true)
		scratch = append(scratch, '\n')
		for j := 0; j < len(scratch)-1; {
			unsorted = append(unsorted, wordRef{at: int32(at + j), i: int32(i)})
			bucket[wordKeyBytes(scratch, j)+1]++
			k := bytes.IndexByte(scratch[j:], ' ')
			if k < 0 {
				break
			}
			j += k + 1
		}
		b.Write(scratch)
	}
	start[len(communes)] = int32(b.Len())
	text := b.String()

	for k := 1; k < len(bucket); k++ {
		bucket[k] += bucket[k-1]
	}
	words := make([]wordRef, len(unsorted))
	next := make([]int32, nsym*nsym)
	copy(next, bucket)
	for _, w := range unsorted {
		k := wordKey(text, int(w.at))
		words[next[k]] = w
		next[k]++
	}
	return nameIndex{text: text, start: start, bucket: bucket, words: words}
}

// wordKeyBytes is wordKey for a name being built.
func wordKeyBytes(name []byte, at int) int {
	return int(symOf[name[at]])*nsym + int(symOf[name[at+1]])
}

// name returns the normalized name of commune i.
func (n *nameIndex) name(i int32) string { return n.text[n.start[i] : n.start[i+1]-1] }

// candidates returns the word starts that may begin with t (non-empty): those
// of t's bucket, or of every bucket of its first byte if t has only one.
func (n *nameIndex) candidates(t string) []wordRef {
	k := int(symOf[t[0]]) * nsym
	if len(t) == 1 {
		return n.words[n.bucket[k]:n.bucket[k+nsym]]
	}
	k += int(symOf[t[1]])
	return n.words[n.bucket[k]:n.bucket[k+1]]
}
