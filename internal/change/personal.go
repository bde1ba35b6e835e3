package change

import (
	"maps"

	"numeribus/internal/domain"
)

// WithoutPersonal returns f without the personal fields of kind k, whatever
// their values (a cleared field goes too): what an erasure leaves of a
// change. f itself is not modified: the result is a copy when some fields
// are dropped, f when there are none to drop.
func WithoutPersonal(k domain.Kind, f Fields) Fields {
	var out Fields
	for _, n := range domain.PersonalFields(k) {
		if _, ok := f[n]; !ok {
			continue
		}
		if out == nil {
			out = maps.Clone(f)
		}
		delete(out, n)
	}
	if out == nil {
		return f
	}
	return out
}

// WithoutPersonalEncoded is WithoutPersonal for a field map as Marshal
// encodes it, a logged change: it returns the encoding without the
// personal fields of kind k, and whether any was dropped (when none was,
// raw itself, and the caller has nothing to rewrite).
func WithoutPersonalEncoded(k domain.Kind, raw []byte) ([]byte, bool, error) {
	var f Fields
	if err := Unmarshal(raw, &f); err != nil {
		return nil, false, err
	}
	out := WithoutPersonal(k, f)
	if len(out) == len(f) {
		return raw, false, nil
	}
	return out.Encode(), true, nil
}
