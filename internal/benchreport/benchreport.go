// Package benchreport is the shared output of `make bench`: figures with
// their targets, printed as a table and written as JSON, with the machine
// they were measured on. The agent benchmark and the sync benchmark both
// use it so that their files read the same way.
package benchreport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Figure is one measured value.
type Figure struct {
	Name   string  `json:"name"`
	Label  string  `json:"label"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"`
	Met    *bool   `json:"met,omitempty"`
}

// Machine describes where the figures were measured.
type Machine struct {
	NumCPU    int    `json:"num_cpu"`
	GOOS      string `json:"goos"`
	GOARCH    string `json:"goarch"`
	GoVersion string `json:"go_version"`
	// LoadAvgStart/End are the 1-minute load average at the start and end
	// of the run (Linux; 0 elsewhere): figures taken on a busy machine are
	// not comparable.
	LoadAvgStart float64 `json:"load_avg_start"`
	LoadAvgEnd   float64 `json:"load_avg_end"`
}

// Results is the JSON file. Params holds the run's sizes, as the caller
// defines them.
type Results struct {
	Machine Machine  `json:"machine"`
	When    string   `json:"when"`
	Params  any      `json:"params"`
	Figures []Figure `json:"figures"`
	Notes   []string `json:"notes,omitempty"`
}

// New starts the results of a run now.
func New(params any) *Results {
	return &Results{
		Machine: Machine{NumCPU: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH,
			GoVersion: runtime.Version(), LoadAvgStart: LoadAvg()},
		When:   time.Now().UTC().Format(time.RFC3339),
		Params: params,
	}
}

// Add adds a figure without target.
func (r *Results) Add(name, label string, v float64, unit string) {
	r.Figures = append(r.Figures, Figure{Name: name, Label: label, Value: v, Unit: unit})
}

// AddTarget adds a figure with a target: op is "<", "<=" or ">=".
func (r *Results) AddTarget(name, label string, v float64, unit, op string, x float64) {
	var met bool
	switch op {
	case "<":
		met = v < x
	case "<=":
		met = v <= x
	case ">=":
		met = v >= x
	default:
		panic("benchreport: unknown target operator " + op)
	}
	r.Figures = append(r.Figures, Figure{Name: name, Label: label, Value: v, Unit: unit,
		Target: op + " " + Num(x), Met: &met})
}

// Note adds a line of explanation.
func (r *Results) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Finish records the end load average.
func (r *Results) Finish() { r.Machine.LoadAvgEnd = LoadAvg() }

// WriteJSON writes the results to path, creating its directory.
func (r *Results) WriteJSON(path string) error {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", dir, err)
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// PrintTable prints the figures and notes.
func (r *Results) PrintTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tunit\ttarget\tmet")
	for _, f := range r.Figures {
		met := ""
		if f.Met != nil {
			met = "no"
			if *f.Met {
				met = "yes"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Label, Num(f.Value), f.Unit, f.Target, met)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// Num prints a value with about three significant digits, never in
// exponent form, without trailing zeros.
func Num(v float64) string {
	a := math.Abs(v)
	var s string
	switch {
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		s = fmt.Sprintf("%.1f", v)
	case a >= 1 || a == 0:
		s = fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// LoadAvg returns the 1-minute load average, or 0 where unknown.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// ModuleRoot walks up from the working directory to the go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory: run from inside the module")
		}
		dir = parent
	}
}
