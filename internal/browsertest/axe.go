package browsertest

import (
	_ "embed"
	"fmt"
	"strings"

	"github.com/chromedp/chromedp"
)

// axeScript is axe-core, vendored as test data (testdata/axe: version,
// source and licence). This package is imported by test code only, so
// only test binaries carry it.
//
//go:embed testdata/axe/axe.min.js
var axeScript string

// AxeTags are the axe-core rule sets Axe runs: every WCAG 2.0, 2.1 and
// 2.2 level A and AA rule, and Deque's best practices (landmarks, one
// main heading, heading order, unique landmark names…), which catch what
// makes a page hard to walk with a screen reader even when no success
// criterion fails outright.
var AxeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"}

// AxeViolation is one axe-core rule the page breaks, with the elements
// that break it.
type AxeViolation struct {
	ID     string    `json:"id"`
	Impact string    `json:"impact"`
	Help   string    `json:"help"`
	URL    string    `json:"helpUrl"`
	Nodes  []AxeNode `json:"nodes"`
}

// AxeNode is one element breaking a rule: its CSS selector path and
// what axe says to fix.
type AxeNode struct {
	Target  []string `json:"target"`
	Summary string   `json:"failureSummary"`
}

// axeRun runs axe-core on the document and keeps, of its answer, what a
// failure message needs. Selectors inside a shadow root or a frame come
// as arrays: they are joined with " >> ".
const axeRun = `axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]}).then(r =>
	r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
		nodes: v.nodes.map(n => ({target: n.target.map(t => Array.isArray(t) ? t.join(" >> ") : String(t)),
			failureSummary: n.failureSummary || ""}))})))`

// AxeViolations loads axe-core into the current page (once per page) and
// returns the violations of the AxeTags rules; the test fails if axe
// cannot run.
func (b *Browser) AxeViolations() []AxeViolation {
	b.T.Helper()
	// Contrast and target sizes need the style sheet applied.
	b.WaitJS("axe: page loaded", `document.readyState === "complete"`)
	loaded, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`typeof window.axe === "object" && typeof window.axe.run === "function"`))
	if err != nil {
		b.T.Fatalf("axe: %v", err)
	}
	if !loaded {
		if err := chromedp.Do(b.Ctx, chromedp.Evaluate[chromedp.Void](axeScript)); err != nil {
			b.T.Fatalf("axe: loading axe-core: %v", err)
		}
	}
	tags := `["` + strings.Join(AxeTags, `","`) + `"]`
	vs, err := chromedp.Run(b.Ctx, chromedp.Evaluate[[]AxeViolation](fmt.Sprintf(axeRun, tags), chromedp.EvalAwaitPromise))
	if err != nil {
		b.T.Fatalf("axe: running: %v", err)
	}
	return vs
}

// Axe runs axe-core on the current page, named page in the messages, and
// fails the test (without stopping it) on any violation, listing each
// rule broken and the elements breaking it.
func (b *Browser) Axe(page string) {
	b.T.Helper()
	vs := b.AxeViolations()
	if len(vs) == 0 {
		return
	}
	b.T.Errorf("axe: %s (%s): %d rule(s) broken:\n%s", page, b.Location(), len(vs), FormatAxe(vs))
}

// FormatAxe lists violations one rule a paragraph: id, impact, help,
// then each element's selector and axe's advice.
func FormatAxe(vs []AxeViolation) string {
	var s strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&s, "  %s [%s] %s (%s)\n", v.ID, v.Impact, v.Help, v.URL)
		for _, n := range v.Nodes {
			fmt.Fprintf(&s, "    %s\n", strings.Join(n.Target, ", "))
			for l := range strings.SplitSeq(strings.TrimSpace(n.Summary), "\n") {
				fmt.Fprintf(&s, "      %s\n", strings.TrimSpace(l))
			}
		}
	}
	return s.String()
}
