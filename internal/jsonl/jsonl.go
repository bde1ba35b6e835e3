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

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"numeribus/internal/apperr"
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

// ErrorCode says invalid lines are invalid input (apperr).
func (e Errors) ErrorCode() apperr.Code { return apperr.Invalid }

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
		if err := jsonv2.Unmarshal(line, &env); err != nil {
			return nil, decodeError("", err)
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
	v := withKind(r)
	if err := jsonv2.Unmarshal(line, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, decodeError(kind, err)
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

// decodeError says in French what is wrong with a line the decoder
// refused: bad syntax, a member twice, an unknown member, a value of the
// wrong type.
func decodeError(kind domain.Kind, err error) error {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return fmt.Errorf("membre %q en double", syn.JSONPointer.LastToken())
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("JSON invalide : %w", err)
	case errors.As(err, &sem) && errors.Is(sem.Err, jsonv2.ErrUnknownName):
		return fmt.Errorf("%s : membre %q inconnu", kind, sem.JSONPointer.LastToken())
	case errors.As(err, &sem) && sem.JSONPointer != "":
		member := sem.JSONPointer.LastToken()
		if sem.Err != nil {
			val := ""
			if len(sem.JSONValue) > 0 {
				val = " " + string(sem.JSONValue)
			}
			return fmt.Errorf("%s : membre %q, valeur%s refusée : %w", kind, member, val, sem.Err)
		}
		return fmt.Errorf("%s : membre %q : attendu %s, trouvé %s", kind, member, goKindFR(sem.GoType), jsonKindFR(sem.JSONKind))
	}
	return fmt.Errorf("%s : %w", kind, err)
}

// goKindFR names in French the JSON a Go type reads.
func goKindFR(t reflect.Type) string {
	if t == nil {
		return "une autre valeur"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "un nombre entier"
	case reflect.Float32, reflect.Float64:
		return "un nombre"
	case reflect.String:
		return "un texte entre guillemets"
	case reflect.Bool:
		return "true ou false"
	case reflect.Slice:
		return "une liste [...]"
	case reflect.Struct, reflect.Map:
		return "un objet {...}"
	}
	return "une autre valeur"
}

// jsonKindFR names in French the kind of a JSON value.
func jsonKindFR(k jsontext.Kind) string {
	switch k {
	case '"':
		return "un texte"
	case '0':
		return "un nombre"
	case 't', 'f':
		return "un booléen"
	case 'n':
		return "null"
	case '[':
		return "une liste"
	case '{':
		return "un objet"
	}
	return "autre chose"
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

// Line is a decoded line.
type Line struct {
	N      int // line number, from 1
	Record domain.Record
}

// ReadAll reads and decodes every line of rd on every core, and returns
// the records in file order, or Errors listing every bad line.
func ReadAll(rd io.Reader) ([]Line, error) {
	var out []Line
	err := ReadChunks(rd, DefaultChunk, func(lines []Line) error {
		out = append(out, lines...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DefaultChunk is the run of lines ReadChunks decodes at a time: large
// enough to spread over the cores, small enough for the consumer to start
// early.
const DefaultChunk = 1024

// ReadChunks reads rd and decodes its lines on every core, calling fn with
// each run of up to n decoded lines, in file order, while the following
// runs are being read and decoded. Once a line is bad fn is no longer
// called, but every line is still decoded so that the returned Errors
// list every bad one. An error from fn, or an I/O error, stops the reading
// and is returned.
func ReadChunks(rd io.Reader, n int, fn func([]Line) error) error {
	if n < 1 {
		n = DefaultChunk
	}
	type raw struct {
		n int
		b []byte
	}
	type result struct {
		lines []Line
		errs  Errors
	}
	type job struct {
		raws []raw
		out  chan result
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan job)
	// order bounds the read-ahead: a few runs per worker.
	order := make(chan chan result, 2*workers)
	stop := make(chan struct{})
	var readErr error // set by the reader before it closes order
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				var r result
				r.lines = make([]Line, 0, len(j.raws))
				for _, x := range j.raws {
					rec, err := DecodeLine(x.b)
					if err != nil {
						r.errs = append(r.errs, &LineError{Line: x.n, Err: err})
						continue
					}
					r.lines = append(r.lines, Line{N: x.n, Record: rec})
				}
				j.out <- r
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		sc := bufio.NewScanner(rd)
		sc.Buffer(make([]byte, 64*1024), MaxLine+1)
		lineNo := 0
		var batch []raw
		send := func() bool {
			if len(batch) == 0 {
				return true
			}
			j := job{raws: batch, out: make(chan result, 1)}
			batch = nil
			select {
			case order <- j.out:
			case <-stop:
				return false
			}
			jobs <- j
			return true
		}
		for sc.Scan() {
			lineNo++
			line := bytes.TrimSpace(sc.Bytes())
			if len(line) == 0 || line[0] == '#' {
				continue
			}
			batch = append(batch, raw{lineNo, bytes.Clone(line)})
			if len(batch) == n && !send() {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				readErr = Errors{&LineError{Line: lineNo + 1, Err: fmt.Errorf("ligne trop longue (au plus %d octets)", MaxLine)}}
			} else {
				readErr = fmt.Errorf("lecture : %w", err)
			}
			return
		}
		send()
	}()
	var errs Errors
	var fnErr error
	for out := range order {
		r := <-out
		errs = append(errs, r.errs...)
		if fnErr == nil && len(errs) == 0 {
			fnErr = fn(r.lines)
		}
		if fnErr != nil {
			// The reader stops at its next run (not waited for: it may
			// be blocked reading a pipe); the workers end with jobs.
			close(stop)
			return fnErr
		}
	}
	wg.Wait()
	switch {
	case readErr != nil:
		var le Errors
		if errors.As(readErr, &le) {
			return append(errs, le...)
		}
		return readErr
	case len(errs) > 0:
		return errs
	}
	return nil
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
