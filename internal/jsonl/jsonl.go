// Package jsonl reads and writes records as JSON Lines, the import and
// export shape of the agent (docs/IMPORT.md): one object per line, a
// "kind" member naming the record type, the other members being the
// record's fields by their French names.
//
// The decoder faces files made by hand or by other tools, so it is strict
// (unknown members, a bad kind or malformed JSON are errors naming the
// line) and bounded (a line may not exceed MaxLine bytes).
package jsonl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"sync"
	"time"

	"numeribus/internal/domain"
	"numeribus/internal/ident"
)

// MaxLine bounds one line: a record is a few hundred bytes; a megabyte is
// a broken file, not a record.
const MaxLine = 1 << 20

// LineError is the error of one line of a file.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("ligne %d : %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Errors lists the errors of a file, every line at once.
type Errors []*LineError

func (e Errors) Error() string {
	var b bytes.Buffer
	for i, le := range e {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(le.Error())
	}
	return b.String()
}

type envelope struct {
	Kind *domain.Kind `json:"kind"`
}

// DecodeLine decodes one line into a record. A record without an id gets
// one derived from its content, so that importing the same line twice
// yields the same record.
func DecodeLine(line []byte) (domain.Record, error) {
	line = bytes.TrimSpace(line)
	if len(line) > MaxLine {
		return nil, fmt.Errorf("ligne trop longue (%d octets, au plus %d)", len(line), MaxLine)
	}
	kind, ok := quickKind(line)
	if !ok {
		// The slow way, for lines written by hand (spaces, kind last…)
		// and for the precise error message.
		var env envelope
		if err := json.Unmarshal(line, &env); err != nil {
			return nil, fmt.Errorf("JSON invalide : %w", err)
		}
		if env.Kind == nil {
			return nil, fmt.Errorf(`membre "kind" manquant (un de %s)`, kindList())
		}
		kind = *env.Kind
	}
	r := domain.New(kind)
	if r == nil {
		return nil, fmt.Errorf(`kind %q inconnu (un de %s)`, kind, kindList())
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	v := withKind(r)
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("JSON invalide : %w", err)
		}
		return nil, fmt.Errorf("%s : %w", kind, err)
	}
	if dec.More() {
		return nil, errors.New("JSON invalide : plusieurs objets JSON sur une ligne")
	}
	if got := decodedKind(v); got != kind {
		return nil, fmt.Errorf(`kind %q ambigu : la ligne dit aussi %q`, kind, got)
	}
	r.Normalize()
	if r.RecordID().IsZero() {
		r.SetRecordID(deriveID(r))
	}
	return r, nil
}

// quickKind reads the kind of a line shaped as EncodeLine writes it,
// {"kind":"…", …}, without a first full parse. An unescaped quote cannot
// occur inside a JSON string, so the prefix cannot be faked by a value;
// the strict decode that follows checks the line and the kind again.
func quickKind(line []byte) (domain.Kind, bool) {
	const prefix = `{"kind":"`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return "", false
	}
	rest := line[len(prefix):]
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 {
		return "", false
	}
	k := domain.Kind(rest[:end])
	return k, k.Valid()
}

// decodedKind returns the kind member decoded by the value of withKind.
func decodedKind(v any) domain.Kind {
	return reflect.ValueOf(v).Elem().Field(0).Interface().(domain.Kind)
}

// withKind returns a value that decodes a line's "kind" member beside the
// record's own members, so that unknown members can be refused in one pass.
func withKind(r domain.Record) any {
	switch v := r.(type) {
	case *domain.Activity:
		return &struct {
			Kind domain.Kind `json:"kind"`
			*domain.Activity
		}{Activity: v}
	case *domain.Beneficiary:
		return &struct {
			Kind domain.Kind `json:"kind"`
			*domain.Beneficiary
		}{Beneficiary: v}
	case *domain.Consent:
		return &struct {
			Kind domain.Kind `json:"kind"`
			*domain.Consent
		}{Consent: v}
	case *domain.Assessment:
		return &struct {
			Kind domain.Kind `json:"kind"`
			*domain.Assessment
		}{Assessment: v}
	case *domain.TourStop:
		return &struct {
			Kind domain.Kind `json:"kind"`
			*domain.TourStop
		}{TourStop: v}
	}
	panic(fmt.Sprintf("jsonl: no decoder for %T", r))
}

func kindList() string {
	var b bytes.Buffer
	for i, k := range domain.Kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(k))
	}
	return b.String()
}

// deriveID makes a UUIDv7 whose time is the record's date and whose other
// bits hash its normalized content.
func deriveID(r domain.Record) ident.ID {
	canon, _ := json.Marshal(r)
	var at time.Time
	var date string
	switch v := r.(type) {
	case *domain.Activity:
		date = v.Date
	case *domain.TourStop:
		date = v.Date
	case *domain.Consent:
		date = v.Date
	case *domain.Assessment:
		date = v.Date
	case *domain.Beneficiary:
		date = v.PremierAccompagnement
	}
	if t, ok := domain.ParseDate(date); ok {
		at = t
	}
	return ident.Derive(at, string(r.Kind()), string(canon))
}

// Read decodes every line of rd, calling fn for each record with its line
// number. Blank lines and lines starting with # are skipped. All line
// errors are collected and returned together as Errors; an I/O error
// stops the reading.
func Read(rd io.Reader, fn func(line int, r domain.Record) error) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), MaxLine+1)
	var errs Errors
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		r, err := DecodeLine(line)
		if err == nil {
			err = fn(n, r)
		}
		if err != nil {
			errs = append(errs, &LineError{Line: n, Err: err})
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			errs = append(errs, &LineError{Line: n + 1, Err: fmt.Errorf("ligne trop longue (au plus %d octets)", MaxLine)})
			return errs
		}
		return fmt.Errorf("lecture : %w", err)
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// Line is a decoded line.
type Line struct {
	N      int // line number, from 1
	Record domain.Record
}

// ReadAll reads every line of rd, then decodes them on every core, and
// returns the records in file order, or Errors listing every bad line.
func ReadAll(rd io.Reader) ([]Line, error) {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), MaxLine+1)
	type raw struct {
		n int
		b []byte
	}
	var raws []raw
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		raws = append(raws, raw{n, bytes.Clone(line)})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, Errors{&LineError{Line: n + 1, Err: fmt.Errorf("ligne trop longue (au plus %d octets)", MaxLine)}}
		}
		return nil, fmt.Errorf("lecture : %w", err)
	}
	out := make([]Line, len(raws))
	errs := make([]error, len(raws))
	workers := min(runtime.GOMAXPROCS(0), 1+len(raws)/256)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raws); i += workers {
				out[i].N = raws[i].n
				out[i].Record, errs[i] = DecodeLine(raws[i].b)
			}
		}()
	}
	wg.Wait()
	var le Errors
	for i, err := range errs {
		if err != nil {
			le = append(le, &LineError{Line: raws[i].n, Err: err})
		}
	}
	if len(le) > 0 {
		return nil, le
	}
	return out, nil
}

// EncodeLine returns the JSON line of a record (without the newline), in
// the shape DecodeLine reads.
func EncodeLine(r domain.Record) ([]byte, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encodage %s : %w", r.Kind(), err)
	}
	// {"kind":"…",  + the record's members
	out := make([]byte, 0, len(body)+24)
	out = append(out, `{"kind":`...)
	k, _ := json.Marshal(r.Kind())
	out = append(out, k...)
	if len(body) > 2 {
		out = append(out, ',')
	}
	return append(out, body[1:]...), nil
}
