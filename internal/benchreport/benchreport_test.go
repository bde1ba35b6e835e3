package benchreport

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResults(t *testing.T) {
	r := New(map[string]int{"n": 3})
	r.Add("a", "a figure", 1234.7, "x")
	r.AddTarget("b", "b figure", 0.4, "x", "<=", 0.5)
	r.AddTarget("c", "c figure", 0.4, "x", ">=", 0.5)
	r.Note("measured %d times", 3)
	r.Finish()
	var out bytes.Buffer
	if err := r.PrintTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a figure", "1235", "<= 0.5", "yes", "no", "note: measured 3 times"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	p := filepath.Join(t.TempDir(), "sub", "r.json")
	if err := r.WriteJSON(p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var back Results
	if err := json.Unmarshal(b, &back); err != nil || len(back.Figures) != 3 || *back.Figures[1].Met != true || *back.Figures[2].Met {
		t.Fatalf("JSON: %s %v", b, err)
	}
	for v, want := range map[float64]string{0: "0", 12.5: "12.5", 0.01234: "0.0123", 250.25: "250.2", 1e6: "1000000"} {
		if got := Num(v); got != want {
			t.Errorf("Num(%v) = %q, want %q", v, got, want)
		}
	}
}
