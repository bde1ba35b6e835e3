package wire

import (
	"encoding/binary"

	"numeribus/internal/change"
	"numeribus/internal/domain"
)

// A hand-written decoder for the one frame the hub reads in bulk: a Push
// and its changes (issue #13). The library decodes a Push by reflection
// at ~0.9 µs a change, beside the hub's one SQLite writer on a 2-core
// machine; this reads the same bytes into the same struct in one pass.
//
// It is a fast path, never a second opinion: it takes a frame only when
// the frame is plainly what the library accepts — definite lengths, no
// tag, the known keys once each with the expected CBOR types, lengths and
// counts within the limits of frameDM, nothing after the map — and
// answers "not handled" on anything else, the library then decoding the
// frame as before (so every error, and every odd but valid shape, is the
// library's). Each field it takes is read exactly as the library reads it
// (TestFastPushMatchesLibrary, FuzzFastPush).

// fastPush decodes a Push frame, or returns false when the frame is not
// one it handles. The message is not yet normalized or checked; its
// changes' Fields are checked (fastFields) as Change.check would.
func fastPush(frame []byte) (*Push, bool) {
	n, i, ok := mapHead(frame, 0)
	if !ok || n > 4 {
		return nil, false // more pairs than keys: a repeated or unknown one
	}
	p := new(Push)
	var seen uint8
	for range n {
		var k uint64
		if k, i, ok = uintAt(frame, i); !ok || k > 3 || seen&(1<<k) != 0 {
			return nil, false
		}
		seen |= 1 << k
		switch k {
		case 0:
			var t uint64
			if t, i, ok = uintAt(frame, i); !ok || t != uint64(TypePush) {
				return nil, false
			}
		case 1:
			p.Batch, i, ok = uintAt(frame, i)
		case 2:
			p.Keys, i, ok = fastKeys(frame, i)
		case 3:
			p.Changes, i, ok = fastChanges(frame, i)
		}
		if !ok {
			return nil, false
		}
	}
	if i != len(frame) || seen&1 == 0 {
		return nil, false
	}
	p.own()
	return p, true
}

// fastKeys reads Push.Keys: a map of key ids to byte strings.
func fastKeys(b []byte, i int) (map[uint64][]byte, int, bool) {
	n, i, ok := mapHead(b, i)
	if !ok {
		return nil, 0, false
	}
	keys := make(map[uint64][]byte, n)
	for range n {
		var id uint64
		var k []byte
		if id, i, ok = uintAt(b, i); !ok {
			return nil, 0, false
		}
		if k, i, ok = bytesAt(b, i); !ok {
			return nil, 0, false
		}
		if _, dup := keys[id]; dup {
			return nil, 0, false
		}
		keys[id] = k
	}
	return keys, i, true
}

// fastChanges reads Push.Changes: an array of change maps.
func fastChanges(b []byte, i int) ([]Change, int, bool) {
	n, i, ok := headOf(b, i, 4)
	if !ok || n > MaxChanges || n > uint64(len(b)-i) { // each change takes a byte at least
		return nil, 0, false
	}
	cs := make([]Change, n)
	for j := range cs {
		if i, ok = fastChange(b, i, &cs[j]); !ok {
			return nil, 0, false
		}
	}
	return cs, i, true
}

// fastChange reads one pushed change into c. A pushed change carries
// neither Device nor HubSeq: either key leaves the frame to the library.
func fastChange(b []byte, i int, c *Change) (int, bool) {
	n, i, ok := mapHead(b, i)
	if !ok || n > 8 {
		return 0, false
	}
	var seen uint16
	for range n {
		var k, v uint64
		if k, i, ok = uintAt(b, i); !ok || k == 0 || k > 8 || seen&(1<<k) != 0 {
			return 0, false
		}
		seen |= 1 << k
		switch k {
		case 1, 3: // Kind, Op: uint8
			if v, i, ok = uintAt(b, i); !ok || v > 0xff {
				return 0, false
			}
			if k == 1 {
				c.Kind = uint8(v)
			} else {
				c.Op = uint8(v)
			}
		case 2: // ID: 16 bytes (ident.ID.UnmarshalBinary)
			var id []byte
			if id, i, ok = bytesAt(b, i); !ok || len(id) != len(c.ID) {
				return 0, false
			}
			copy(c.ID[:], id)
		case 4:
			c.HLC, i, ok = uintAt(b, i)
		case 5:
			c.Seq, i, ok = uintAt(b, i)
		case 6:
			start := i
			if i, ok = fastFields(b, i, nil); ok {
				c.Fields = b[start:i:i]
			}
		case 7:
			c.Sealed, i, ok = bytesAt(b, i)
		case 8:
			c.KeyID, i, ok = uintAt(b, i)
		}
		if !ok {
			return 0, false
		}
	}
	return i, true
}

// own copies the byte strings and field maps of p, which point into the
// frame, into one block of p's own: the hub reads its frames into pooled
// buffers (TestDecodedFrameOwnsItsBytes), and the library copied each
// one apart (two allocations a change where this makes one a push).
func (p *Push) own() {
	size := 0
	for _, k := range p.Keys {
		size += len(k)
	}
	for i := range p.Changes {
		size += len(p.Changes[i].Fields) + len(p.Changes[i].Sealed)
	}
	block := make([]byte, 0, size)
	keep := func(s []byte) []byte {
		if s == nil {
			return nil
		}
		at := len(block)
		block = append(block, s...)
		return block[at:len(block):len(block)]
	}
	for id, k := range p.Keys {
		p.Keys[id] = keep(k)
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		c.Fields, c.Sealed = keep(c.Fields), keep(c.Sealed)
	}
}

// fastFields checks the field map at b[i] as scanFields does — a map,
// within the limits of fieldsDM, whose keys are field numbers other than
// the id's — and returns where it ends; false when it is not plainly so
// (keys not in increasing order included: the general walk then says
// whether they repeat). With out non-nil, it adds the fields to out,
// values as slices of b.
func fastFields(b []byte, i int, out change.Fields) (int, bool) {
	n, i, ok := mapHead(b, i)
	if !ok {
		return 0, false
	}
	var last uint64
	for j := range n {
		var k uint64
		if k, i, ok = uintAt(b, i); !ok || k == domain.IDField || (j > 0 && k <= last) {
			return 0, false
		}
		last = k
		start := i
		if i, ok = smallItem(b, i); !ok {
			if i, ok = wellformed(b, i, FieldsDepth-1); !ok {
				return 0, false
			}
		}
		if out != nil {
			out[k] = b[start:i:i]
		}
	}
	return i, true
}

// wellformed returns where the item at b[i] ends if it is plainly
// well-formed under the limits of Decode with at most depth levels of
// arrays and maps: definite lengths, no tags, arrays of at most
// MaxChanges elements, maps of at most MaxMapPairs pairs, simple values
// false, true, null and undefined, and floats (the library's decoders
// take NaN and infinities). Text is not checked for UTF-8: the library
// does not check it in a raw item either. False on anything else, which
// the library may still accept: the caller falls back to it.
func wellformed(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	ib := b[i]
	arg, j, ok := argAt(b, i)
	if !ok {
		return 0, false
	}
	switch ib >> 5 {
	case 0, 1:
		return j, true
	case 2, 3:
		if arg > uint64(len(b)-j) {
			return 0, false
		}
		return j + int(arg), true
	case 4, 5:
		if depth == 0 {
			return 0, false
		}
		count := arg
		if ib>>5 == 4 {
			if arg > MaxChanges {
				return 0, false
			}
		} else {
			if arg > MaxMapPairs {
				return 0, false
			}
			count = 2 * arg
		}
		for range count {
			if j, ok = wellformed(b, j, depth-1); !ok {
				return 0, false
			}
		}
		return j, true
	case 7:
		switch ib & 0x1f {
		case 20, 21, 22, 23, 25, 26, 27:
			return j, true
		}
	}
	return 0, false // tags, other simple values
}

// smallItem returns where the item at b[i] ends when it is an integer
// below 24 in magnitude or a string of fewer than 24 bytes, whole in b:
// most values of a field map, read without a call to wellformed.
func smallItem(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i]&0x1f >= 24 {
		return i, false
	}
	switch b[i] >> 5 {
	case 0, 1:
		return i + 1, true
	case 2, 3:
		if end := i + 1 + int(b[i]&0x1f); end <= len(b) {
			return end, true
		}
	}
	return i, false
}

// argAt reads the head of the item at b[i]: its argument and where what
// follows the head starts; false for a head cut short, a reserved
// additional information (28 to 30) or an indefinite length (31).
func argAt(b []byte, i int) (uint64, int, bool) {
	switch ai := b[i] & 0x1f; {
	case ai < 24:
		return uint64(ai), i + 1, true
	case ai == 24 && len(b)-i > 1:
		return uint64(b[i+1]), i + 2, true
	case ai == 25 && len(b)-i > 2:
		return uint64(binary.BigEndian.Uint16(b[i+1:])), i + 3, true
	case ai == 26 && len(b)-i > 4:
		return uint64(binary.BigEndian.Uint32(b[i+1:])), i + 5, true
	case ai == 27 && len(b)-i > 8:
		return binary.BigEndian.Uint64(b[i+1:]), i + 9, true
	}
	return 0, 0, false
}

// headOf reads the head of the item at b[i], which must be of major type
// major.
func headOf(b []byte, i int, major byte) (uint64, int, bool) {
	if i >= len(b) || b[i]>>5 != major {
		return 0, 0, false
	}
	if ai := b[i] & 0x1f; ai < 24 { // the argument in the head: most of them
		return uint64(ai), i + 1, true
	}
	return argAt(b, i)
}

// uintAt reads an unsigned integer.
func uintAt(b []byte, i int) (uint64, int, bool) {
	if i < len(b) && b[i] < 24 { // below 24: the head alone, inlined
		return uint64(b[i]), i + 1, true
	}
	return headOf(b, i, 0)
}

// mapHead reads the head of a map of at most MaxMapPairs pairs.
func mapHead(b []byte, i int) (uint64, int, bool) {
	n, i, ok := headOf(b, i, 5)
	// Each pair takes two bytes at least: a count beyond what is left is
	// refused before anything is sized by it (the library checks the
	// whole frame's shape before it allocates).
	return n, i, ok && n <= MaxMapPairs && n <= uint64(len(b)-i)/2
}

// bytesAt reads a byte string, as a slice of b (nil when empty, as
// normalize leaves it).
func bytesAt(b []byte, i int) ([]byte, int, bool) {
	n, i, ok := headOf(b, i, 2)
	if !ok || n > uint64(len(b)-i) {
		return nil, 0, false
	}
	end := i + int(n)
	if n == 0 {
		return nil, end, true
	}
	return b[i:end:end], end, true
}

// fastScan is scanFields' path for a field map it plainly accepts
// (fastFields over the whole of b); false leaves b to the general walk.
func fastScan(b []byte, collect bool) (change.Fields, bool) {
	var out change.Fields
	if collect {
		n, _, ok := mapHead(b, 0)
		if !ok {
			return nil, false
		}
		out = make(change.Fields, n)
	}
	end, ok := fastFields(b, 0, out)
	if !ok || end != len(b) {
		return nil, false
	}
	return out, true
}
