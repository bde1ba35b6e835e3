package wire

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"numeribus/internal/cborx"
)

// Errors of Decode (and Encode). Every error wraps one of them, with a
// message naming what is wrong.
var (
	ErrMalformed   = errors.New("wire: malformed frame")
	ErrUnknownType = errors.New("wire: unknown message type")
	ErrTooLarge    = errors.New("wire: frame too large")
)

// RawCBOR is one encoded CBOR item carried inline in a message (not as a
// byte string): a change's field map. It is an alias so that an empty one
// is omitted like any empty field (the library special-cases its own
// type); the encoder checks it holds one well-formed item.
type RawCBOR = cbor.RawMessage

// Nesting of a frame: the frame map, the changes array, a change's map,
// then the change's Fields.
const maxNestedLevels = 3 + FieldsDepth

var (
	encMode cbor.EncMode
	// frameDM decodes frames: the limits on untrusted input, unknown
	// keys refused.
	frameDM cbor.DecMode
	// looseDM has the same limits but ignores unknown keys: reading the
	// type of a frame whose key 0 does not come first, and finding which
	// key is unknown for an error message.
	looseDM cbor.DecMode
	// fieldsDM decodes a change's Fields on their own.
	fieldsDM cbor.DecMode
)

// limits returns the limits of Decode on untrusted input for a nesting:
// a whole frame, or a change's Fields alone.
func limits(levels int, strictKeys bool) cborx.Limits {
	return cborx.Limits{Depth: levels, Elements: MaxChanges, Pairs: MaxMapPairs, StrictKeys: strictKeys}
}

func init() {
	var err error
	opts := cbor.CoreDetEncOptions()
	opts.TagsMd = cbor.TagsForbidden
	if encMode, err = opts.EncMode(); err != nil {
		panic(err)
	}
	frameDM = cborx.Untrusted(limits(maxNestedLevels, true))
	looseDM = cborx.Untrusted(limits(maxNestedLevels, false))
	fieldsDM = cborx.Untrusted(limits(FieldsDepth, true))
}

// A frame is a message with its type at key 0. The wrappers embed the
// message struct, whose fields the encoder flattens into the same map.
type (
	helloFrame struct {
		T Type `cbor:"0,keyasint"`
		Hello
	}
	challengeFrame struct {
		T Type `cbor:"0,keyasint"`
		Challenge
	}
	authFrame struct {
		T Type `cbor:"0,keyasint"`
		Auth
	}
	welcomeFrame struct {
		T Type `cbor:"0,keyasint"`
		Welcome
	}
	pushFrame struct {
		T Type `cbor:"0,keyasint"`
		Push
	}
	ackFrame struct {
		T Type `cbor:"0,keyasint"`
		Ack
	}
	pullFrame struct {
		T Type `cbor:"0,keyasint"`
		Pull
	}
	changesFrame struct {
		T Type `cbor:"0,keyasint"`
		Changes
	}
	errorFrame struct {
		T Type `cbor:"0,keyasint"`
		Error
	}
	enrollFrame struct {
		T Type `cbor:"0,keyasint"`
		Enroll
	}
	enrolledFrame struct {
		T Type `cbor:"0,keyasint"`
		Enrolled
	}
	openFrame struct {
		T Type `cbor:"0,keyasint"`
		Open
	}
	deflatedFrame struct {
		T Type `cbor:"0,keyasint"`
		Deflated
	}
)

// frameOf returns the wrapper to encode m.
func frameOf(m Message) (any, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrMalformed)
	}
	if v := reflect.ValueOf(m); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("%w: nil %s", ErrMalformed, m.Type())
	}
	switch m := m.(type) {
	case *Hello:
		return &helloFrame{TypeHello, *m}, nil
	case *Challenge:
		return &challengeFrame{TypeChallenge, *m}, nil
	case *Auth:
		return &authFrame{TypeAuth, *m}, nil
	case *Welcome:
		return &welcomeFrame{TypeWelcome, *m}, nil
	case *Push:
		return &pushFrame{TypePush, *m}, nil
	case *Ack:
		return &ackFrame{TypeAck, *m}, nil
	case *Pull:
		return &pullFrame{TypePull, *m}, nil
	case *Changes:
		return &changesFrame{TypeChanges, *m}, nil
	case *Error:
		return &errorFrame{TypeError, *m}, nil
	case *Enroll:
		return &enrollFrame{TypeEnroll, *m}, nil
	case *Enrolled:
		return &enrolledFrame{TypeEnrolled, *m}, nil
	case *Open:
		return &openFrame{TypeOpen, *m}, nil
	case *Deflated:
		return &deflatedFrame{TypeDeflated, *m}, nil
	}
	return nil, fmt.Errorf("%w: %T is not a message of this package", ErrUnknownType, m)
}

// decodeAs decodes a frame into the wrapper F and returns its message.
func decodeAs[F any, M message](frame []byte, msg func(*F) M) (message, error) {
	f := new(F)
	if err := frameDM.Unmarshal(frame, f); err != nil {
		return nil, err
	}
	return msg(f), nil
}

// decodeBody decodes a frame of type t.
func decodeBody(t Type, b []byte) (message, error) {
	switch t {
	case TypeHello:
		return decodeAs(b, func(f *helloFrame) *Hello { return &f.Hello })
	case TypeChallenge:
		return decodeAs(b, func(f *challengeFrame) *Challenge { return &f.Challenge })
	case TypeAuth:
		return decodeAs(b, func(f *authFrame) *Auth { return &f.Auth })
	case TypeWelcome:
		return decodeAs(b, func(f *welcomeFrame) *Welcome { return &f.Welcome })
	case TypePush:
		return decodeAs(b, func(f *pushFrame) *Push { return &f.Push })
	case TypeAck:
		return decodeAs(b, func(f *ackFrame) *Ack { return &f.Ack })
	case TypePull:
		return decodeAs(b, func(f *pullFrame) *Pull { return &f.Pull })
	case TypeChanges:
		return decodeAs(b, func(f *changesFrame) *Changes { return &f.Changes })
	case TypeError:
		return decodeAs(b, func(f *errorFrame) *Error { return &f.Error })
	case TypeEnroll:
		return decodeAs(b, func(f *enrollFrame) *Enroll { return &f.Enroll })
	case TypeEnrolled:
		return decodeAs(b, func(f *enrolledFrame) *Enrolled { return &f.Enrolled })
	case TypeOpen:
		return decodeAs(b, func(f *openFrame) *Open { return &f.Open })
	case TypeDeflated:
		return decodeAs(b, func(f *deflatedFrame) *Deflated { return &f.Deflated })
	}
	return nil, fmt.Errorf("%w: %d", ErrUnknownType, t)
}

var frameTypes = [...]reflect.Type{
	TypeHello:     reflect.TypeFor[helloFrame](),
	TypeChallenge: reflect.TypeFor[challengeFrame](),
	TypeAuth:      reflect.TypeFor[authFrame](),
	TypeWelcome:   reflect.TypeFor[welcomeFrame](),
	TypePush:      reflect.TypeFor[pushFrame](),
	TypeAck:       reflect.TypeFor[ackFrame](),
	TypePull:      reflect.TypeFor[pullFrame](),
	TypeChanges:   reflect.TypeFor[changesFrame](),
	TypeError:     reflect.TypeFor[errorFrame](),
	TypeEnroll:    reflect.TypeFor[enrollFrame](),
	TypeEnrolled:  reflect.TypeFor[enrolledFrame](),
	TypeOpen:      reflect.TypeFor[openFrame](),
	TypeDeflated:  reflect.TypeFor[deflatedFrame](),
}

// message is what every message struct implements besides Type.
type message interface {
	Message
	// check returns what makes the message invalid, if anything.
	check() error
	// normalize makes empty byte strings, maps and arrays nil, so that a
	// decoded message equals the one it was encoded from.
	normalize()
}

// Encode returns the frame bytes of m: a map with the type at key 0 and
// the message's fields, in Core Deterministic Encoding. It refuses a
// message that Decode would refuse (ErrMalformed) and a frame larger than
// MaxFrame (ErrTooLarge), so that a bug shows at the sender.
func Encode(m Message) ([]byte, error) {
	f, err := frameOf(m)
	if err != nil {
		return nil, err
	}
	if err := m.(message).check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, m.Type(), err)
	}
	b, err := encMode.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding %s: %w", ErrMalformed, m.Type(), err)
	}
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("%w: %s of %d bytes, the limit is %d", ErrTooLarge, m.Type(), len(b), MaxFrame)
	}
	return b, nil
}

// Decode parses one frame from an untrusted peer and returns the typed
// message (*Hello, *Push, …). Errors wrap ErrTooLarge, ErrUnknownType or
// ErrMalformed, with what is wrong; no input makes it panic.
//
// The limits: MaxFrame bytes, nesting of FieldsDepth inside a change's
// Fields, MaxChanges elements per array, MaxMapPairs entries per map;
// duplicate keys, indefinite lengths, tags, unknown keys and invalid UTF-8
// are refused, and so is anything after the one item. The decoder checks
// the whole frame against these limits before it allocates anything.
// Then each message is checked as Encode checks it: sizes of keys, nonces
// and signatures, device ids, modes, and each change (see ToChange).
func Decode(frame []byte) (Message, error) { return decode(frame, true) }

// decode is Decode; with fast, a Push frame is first offered to fastPush,
// without it (the tests' reference) the library decodes every frame.
func decode(frame []byte, fast bool) (Message, error) {
	if len(frame) > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(frame), MaxFrame)
	}
	t, err := peekType(frame)
	if err != nil {
		return nil, err
	}
	if t == TypePush && fast {
		if p, ok := fastPush(frame); ok {
			return checkedPush(p)
		}
	}
	m, err := decodeBody(t, frame)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, t, describe(frame, t, err))
	}
	m.normalize()
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, t, err)
	}
	if d, ok := m.(*Deflated); ok {
		return inflate(d)
	}
	return m, nil
}

// checkedPush normalizes and checks a Push that fastPush decoded, as
// Decode does any message; fastPush checked its changes' Fields already.
func checkedPush(p *Push) (Message, error) {
	p.normalize()
	if err := p.checkPush(false); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, TypePush, err)
	}
	return p, nil
}

// peekType returns the message type of a frame. It reads the first key
// straight from the bytes when it is 0 (always so in deterministic
// encoding), else decodes the frame loosely for key 0.
func peekType(frame []byte) (Type, error) {
	if len(frame) == 0 {
		return 0, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if major := frame[0] >> 5; major != 5 {
		return 0, fmt.Errorf("%w: the frame is %s, not a map", ErrMalformed, majorNames[major])
	}
	var v uint64
	switch {
	// A map of 1 to 23 pairs whose first key is 0 and value a small uint.
	case len(frame) >= 3 && frame[0] > 0xa0 && frame[0] < 0xb8 && frame[1] == 0x00 && frame[2] < 0x18:
		v = uint64(frame[2])
	case len(frame) >= 4 && frame[0] > 0xa0 && frame[0] < 0xb8 && frame[1] == 0x00 && frame[2] == 0x18:
		v = uint64(frame[3])
	default:
		var p struct {
			T *uint64 `cbor:"0,keyasint"`
		}
		if err := looseDM.Unmarshal(frame, &p); err != nil {
			var te *cbor.UnmarshalTypeError
			if errors.As(err, &te) {
				err = &detailError{fmt.Sprintf("message type (key 0): %s where an unsigned integer was expected", cborTypeName(te)), err}
			}
			return 0, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if p.T == nil {
			return 0, fmt.Errorf("%w: no message type (key 0)", ErrMalformed)
		}
		v = *p.T
	}
	if v > 255 || !Type(v).Valid() {
		return 0, fmt.Errorf("%w: %d", ErrUnknownType, v)
	}
	return Type(v), nil
}

var majorNames = [8]string{"an unsigned integer", "a negative integer", "a byte string", "a text string",
	"an array", "a map", "a tag", "a simple value or float"}

// describe turns a decoding error into one that names the offending key
// where the CBOR library does not.
func describe(frame []byte, t Type, err error) error {
	var uf *cbor.UnknownFieldError
	if errors.As(err, &uf) {
		if where := findUnknown(frame, frameTypes[t], ""); where != "" {
			return &detailError{where, err}
		}
	}
	var te *cbor.UnmarshalTypeError
	if errors.As(err, &te) && te.StructFieldName != "" {
		// The library names the field wire.helloFrame.5: name it by key
		// and Go name. A mismatch deeper down (in a change) is reported
		// against the outer field, with the inner type.
		name := te.StructFieldName[strings.LastIndexByte(te.StructFieldName, '.')+1:]
		where := "key " + name
		if n, perr := strconv.ParseUint(name, 10, 64); perr == nil {
			ft := keyFields(frameTypes[t])[n]
			where = fmt.Sprintf("key %d (%s)", n, fieldName(frameTypes[t], n))
			if ft != nil && ft.String() != te.GoType {
				where = "in " + where
			}
		}
		return &detailError{fmt.Sprintf("%s: %s where %s was expected%s", where, cborTypeName(te), te.GoType, detailOf(te)), err}
	}
	return err
}

func cborTypeName(te *cbor.UnmarshalTypeError) string {
	if te.CBORType == "primitives" {
		return "float or simple value"
	}
	return te.CBORType
}

// detailOf returns the library's detail of a type error, e.g. " (257
// overflows uint8)", or "".
func detailOf(te *cbor.UnmarshalTypeError) string {
	s := te.Error()
	if strings.HasSuffix(s, ")") {
		if i := strings.LastIndex(s, " ("); i >= 0 {
			return s[i:]
		}
	}
	return ""
}

// detailError says what is wrong in the terms of the protocol, and wraps
// the library's error.
type detailError struct {
	msg string
	err error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.err }

// findUnknown returns "path: unknown key K" for the first key of the CBOR
// map raw that no field of struct type st has, looking into nested structs
// and arrays of structs; "" if it finds none. raw has already passed the
// well-formedness checks of frameDM.
func findUnknown(raw []byte, st reflect.Type, path string) string {
	var m map[any]cbor.RawMessage
	if looseDM.Unmarshal(raw, &m) != nil {
		return ""
	}
	fields := keyFields(st)
	keys := make([]any, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b any) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	for _, k := range keys {
		n, ok := k.(uint64)
		ft, known := fields[n]
		if !ok || !known {
			if s, isText := k.(string); isText {
				return fmt.Sprintf("%sunknown key %q (keys are small integers)", path, clip(s))
			}
			return fmt.Sprintf("%sunknown key %v", path, k)
		}
		switch {
		case ft.Kind() == reflect.Struct:
			if s := findUnknown(m[k], ft, fmt.Sprintf("%skey %d: ", path, n)); s != "" {
				return s
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			var elems []cbor.RawMessage
			if looseDM.Unmarshal(m[k], &elems) != nil {
				continue
			}
			name := strings.ToLower(fieldName(st, n))
			for i, e := range elems {
				if s := findUnknown(e, ft.Elem(), fmt.Sprintf("%s%s[%d]: ", path, name, i)); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// keyFields maps the integer keys of struct type st (embedded structs
// flattened) to the field types.
func keyFields(st reflect.Type) map[uint64]reflect.Type {
	out := map[uint64]reflect.Type{}
	for i := range st.NumField() {
		f := st.Field(i)
		tag := f.Tag.Get("cbor")
		if f.Anonymous && tag == "" {
			for k, t := range keyFields(f.Type) {
				out[k] = t
			}
			continue
		}
		if n, err := strconv.ParseUint(strings.Split(tag, ",")[0], 10, 64); err == nil {
			out[n] = f.Type
		}
	}
	return out
}

// fieldName returns the Go name of the field with key n in st.
func fieldName(st reflect.Type, n uint64) string {
	for i := range st.NumField() {
		f := st.Field(i)
		tag := f.Tag.Get("cbor")
		if f.Anonymous && tag == "" {
			if s := fieldName(f.Type, n); s != "" {
				return s
			}
			continue
		}
		if strings.Split(tag, ",")[0] == strconv.FormatUint(n, 10) {
			return f.Name
		}
	}
	return ""
}

// clip bounds untrusted text quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
