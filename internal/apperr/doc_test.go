package apperr

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// docs/CLI.md's exit code table lists, for each exit code, the apperr
// codes that give it: it must say what the table does.
func TestCLIDocMatchesTheTable(t *testing.T) {
	b, err := os.ReadFile("../../docs/CLI.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "## Exit codes")
	if i < 0 {
		t.Fatal("docs/CLI.md has no exit code section")
	}
	documented := map[Code]int{}
	for _, line := range strings.Split(doc[i:], "\n")[1:] {
		if strings.HasPrefix(line, "#") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		exit, err := strconv.Atoi(strings.TrimSpace(cells[1]))
		if err != nil {
			continue
		}
		for _, c := range strings.Split(cells[2], ",") {
			if c = strings.TrimSpace(c); c != "" {
				documented[Code(c)] = exit
			}
		}
	}
	for _, c := range Codes() {
		got, ok := documented[c]
		if !ok {
			t.Errorf("docs/CLI.md does not list apperr code %q (exit %d)", c, c.Exit())
		} else if got != c.Exit() {
			t.Errorf("docs/CLI.md gives %q exit %d, the table %d", c, got, c.Exit())
		}
	}
	for c := range documented {
		if !slices.Contains(Codes(), c) {
			t.Errorf("docs/CLI.md lists %q, which apperr has not", c)
		}
	}
}
