package cborx

import "github.com/fxamacker/cbor/v2"

// The decoders of the project are built here and nowhere else
// (internal/archtest checks it): what they refuse is decided once. Each
// format's owner gives the sizes it allows.

// Limits bound what an Untrusted decoder accepts. The library checks the
// whole input against them before it allocates anything.
type Limits struct {
	Depth    int // levels of nesting, the outermost item counted
	Elements int // elements of one array
	Pairs    int // pairs of one map
	// StrictKeys refuses a map key that no field of the target struct
	// has; without it such keys are skipped.
	StrictKeys bool
}

// Untrusted returns a decoder for bytes from outside the program (a
// peer's frame, a pasted enrollment code): within l, and refusing
// duplicate map keys, indefinite lengths, tags, invalid UTF-8, and a
// byte string where text is expected or the reverse. It panics if l is
// outside the library's bounds: a programming error, caught at init.
func Untrusted(l Limits) cbor.DecMode {
	opts := cbor.DecOptions{
		MaxNestedLevels:     l.Depth,
		MaxArrayElements:    l.Elements,
		MaxMapPairs:         l.Pairs,
		DupMapKey:           cbor.DupMapKeyEnforcedAPF,
		IndefLength:         cbor.IndefLengthForbidden,
		TagsMd:              cbor.TagsForbidden,
		UTF8:                cbor.UTF8RejectInvalid,
		ByteStringToString:  cbor.ByteStringToStringForbidden,
		FieldNameByteString: cbor.FieldNameByteStringForbidden,
	}
	if l.StrictKeys {
		opts.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
	}
	return must(opts.DecMode())
}

// trusted is the decoder of Trusted.
var trusted = must(cbor.DecOptions{
	DupMapKey:   cbor.DupMapKeyEnforcedAPF,
	IndefLength: cbor.IndefLengthForbidden,
}.DecMode())

// Trusted returns the decoder for bytes this program encoded (stored
// states, records from their field maps) or that an Untrusted decoder
// has checked first (a change's fields from a frame): duplicate keys and
// indefinite lengths refused, the library's default sizes.
func Trusted() cbor.DecMode { return trusted }

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
