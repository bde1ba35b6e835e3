package jsonl

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"

	"numeribus/internal/domain"
)

const activityLine = `{"kind":"activity","type":"individuel","date":"2026-03-02","duree":30,"type_lieu":"lieu_activite","commune":"88160","thematiques":["email","aide_aux_demarches_administratives"],"demarches":["logement"]}`

func TestDecodeLine(t *testing.T) {
	r, err := DecodeLine([]byte(activityLine))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := r.(*domain.Activity)
	if !ok || a.Duree != 30 || a.Thematiques[0] != "aide_aux_demarches_administratives" {
		t.Fatalf("decoded %#v", r)
	}
	if a.ID.IsZero() || a.ID.Version() != 7 || a.ID.Time().Format("2006-01-02") != "2026-03-02" {
		t.Fatalf("derived id %v", a.ID)
	}
	r2, _ := DecodeLine([]byte(activityLine))
	if r2.RecordID() != a.ID {
		t.Fatal("same line, different derived ids")
	}
	r3, _ := DecodeLine([]byte(strings.Replace(activityLine, `"duree":30`, `"duree":45`, 1)))
	if r3.RecordID() == a.ID {
		t.Fatal("different content, same derived id")
	}
}

func TestDecodeLineErrors(t *testing.T) {
	tests := []struct{ line, want string }{
		{`{"type":"individuel"}`, `"kind" manquant`},
		{`{"kind":"visite"}`, `kind "visite" inconnu`},
		{`{"kind":"activity","couleur":"bleu"}`, `membre "couleur" inconnu`},
		{`{"kind":"activity","Duree":30}`, `membre "Duree" inconnu`},
		{`{"kind":"activity","duree":30,"duree":45}`, `membre "duree" en double`},
		{`{"kind":"activity","duree":"trente"}`, `activity`},
		{`{"kind":"activity"`, `JSON invalide`},
		{`{"kind":"activity"} {"kind":"activity"}`, `JSON invalide`},
		{`{"kind":"beneficiary","id":"pas-un-uuid"}`, `UUID`},
		{`{"kind":"activity","kind":"tourstop"}`, `membre "kind" en double`},
		{`{"type":"individuel","kind":"activity","kind":"tourstop"}`, `membre "kind" en double`},
		{`{"kind":"activit\u0079","duree":"x"}`, `activity`},
	}
	for _, tt := range tests {
		_, err := DecodeLine([]byte(tt.line))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("DecodeLine(%s) = %v, want error containing %q", tt.line, err, tt.want)
		}
	}
}

func TestReadSkipsCommentsAndRefusesOverlongLines(t *testing.T) {
	in := "# export du 2 mars\n\n" + activityLine + "\n  \n# fin\n" + activityLine + "\n"
	lines, err := ReadAll(strings.NewReader(in))
	if err != nil || len(lines) != 2 || lines[0].N != 3 || lines[1].N != 6 {
		t.Fatalf("ReadAll: %+v, %v", lines, err)
	}
	long := activityLine + "\n" + `{"kind":"activity","notes":"` + strings.Repeat("x", MaxLine) + `"}`
	_, err = ReadAll(strings.NewReader(long))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Line != 2 || !strings.Contains(err.Error(), "trop longue") {
		t.Fatalf("over-long line: %v", err)
	}
}

func TestReadAllKeepsOrderAndReportsEveryLine(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 1000; i++ {
		b.WriteString(strings.Replace(activityLine, `"duree":30`, `"duree":`+strconv.Itoa(i+1), 1) + "\n")
	}
	lines, err := ReadAll(strings.NewReader(b.String()))
	if err != nil || len(lines) != 1000 {
		t.Fatalf("ReadAll: %d lines, %v", len(lines), err)
	}
	for i, l := range lines {
		if l.N != i+1 || l.Record.(*domain.Activity).Duree != i+1 {
			t.Fatalf("line %d out of order: %+v", i+1, l)
		}
	}
	bad := b.String() + "{\"kind\":\"x\"}\n" + activityLine + "\nnope\n"
	_, err = ReadAll(strings.NewReader(bad))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Line != 1001 || errs[1].Line != 1003 {
		t.Fatalf("errors: %v", err)
	}
}

func TestReadChunksStreamsInOrder(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 2500; i++ {
		b.WriteString(strings.Replace(activityLine, `"duree":30`, `"duree":`+strconv.Itoa(i+1), 1) + "\n")
	}
	next := 1
	calls := 0
	err := ReadChunks(strings.NewReader(b.String()), 1000, func(lines []Line) error {
		calls++
		if len(lines) > 1000 {
			t.Fatalf("run of %d lines, want at most 1000", len(lines))
		}
		for _, l := range lines {
			if l.N != next || l.Record.(*domain.Activity).Duree != next {
				t.Fatalf("line %d arrives as %d", next, l.N)
			}
			next++
		}
		return nil
	})
	if err != nil || calls != 3 || next != 2501 {
		t.Fatalf("err %v, %d calls, %d lines", err, calls, next-1)
	}

	// After a bad line no run is handed over, every bad line is listed.
	bad := "nope\n" + b.String() + "{\"kind\":\"x\"}\n"
	err = ReadChunks(strings.NewReader(bad), 1000, func([]Line) error {
		t.Fatal("a run was handed over after a bad line")
		return nil
	})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Line != 1 || errs[1].Line != 2502 {
		t.Fatalf("errors: %v", err)
	}
}

func TestReadChunksStopsOnConsumerError(t *testing.T) {
	// A pipe that is never closed: the consumer's error must come back
	// without waiting for the end of the input.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		for i := 0; i < 10; i++ {
			if _, err := io.WriteString(pw, activityLine+"\n"); err != nil {
				return
			}
		}
	}()
	boom := errors.New("disque plein")
	err := ReadChunks(pr, 5, func([]Line) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the consumer's error", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	r, err := DecodeLine([]byte(activityLine))
	if err != nil {
		t.Fatal(err)
	}
	line, err := EncodeLine(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeLine(line)
	if err != nil {
		t.Fatalf("re-decoding %s: %v", line, err)
	}
	again, _ := EncodeLine(back)
	if !bytes.Equal(line, again) {
		t.Fatalf("round trip differs:\n%s\n%s", line, again)
	}
}

// FuzzDecodeLine: no input may panic the decoder, and whatever it accepts
// must encode and decode again to the same line.
func FuzzDecodeLine(f *testing.F) {
	f.Add([]byte(activityLine))
	f.Add([]byte(`{"kind":"beneficiary","genre":"feminin","publics":["senior"]}`))
	f.Add([]byte(`{"kind":"consent","beneficiaire":"0190a0a0-0000-7000-8000-000000000001","finalites":["diagnostic"],"mode":"ecrit","date":"02/03/2026"}`))
	f.Add([]byte(`{"kind":"assessment","domaines":{"pix":"2"}}`))
	f.Add([]byte(`{"kind":"tourstop","heure_debut":"25:00"}`))
	f.Add([]byte(`{"kind":"activity","participants":{"total":3,"genre":{"feminin":2}}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeLine(line)
		if err != nil {
			return
		}
		_ = r.Validate(nil)
		enc, err := EncodeLine(r)
		if err != nil {
			t.Fatalf("accepted line does not encode: %v", err)
		}
		back, err := DecodeLine(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, _ := EncodeLine(back)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("not stable:\n%s\n%s", enc, enc2)
		}
	})
}
