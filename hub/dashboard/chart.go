package dashboard

import (
	"fmt"
	"html/template"
	"strings"
)

// Bar is one bar of a chart: a label and a value. Note, when set, is
// shown after the value (e.g. "12 %").
type Bar struct {
	Label string
	Value float64
	Note  string
}

// Chart is a horizontal bar chart drawn on the server as SVG: no script,
// no library, readable without colour (every bar carries its value as
// text) and by screen readers (a <title> and <desc>, and a <title> per
// bar). The same numbers are in a table next to it on every page.
type Chart struct {
	Title string
	Desc  string
	Bars  []Bar
	// Format writes a value (frInt of the rounded value when nil).
	Format func(float64) string
}

// Chart geometry, in SVG user units (the SVG scales to its container).
const (
	chartWidth  = 720
	chartLabelW = 250
	chartValueW = 90
	chartBarH   = 22
	chartGap    = 8
)

// SVG renders the chart.
func (c Chart) SVG() template.HTML {
	format := c.Format
	if format == nil {
		format = func(v float64) string { return frInt(int64(v + 0.5)) }
	}
	maxV := 0.0
	for _, b := range c.Bars {
		maxV = max(maxV, b.Value)
	}
	h := len(c.Bars)*(chartBarH+chartGap) + chartGap
	if len(c.Bars) == 0 {
		h = chartBarH + 2*chartGap
	}
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%[3]s-t %[3]s-d">`,
		chartWidth, h, chartID(c.Title))
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%[1]s-d">%s</desc>`, chartID(c.Title), esc(c.Title), esc(c.Desc))
	span := float64(chartWidth - chartLabelW - chartValueW)
	for i, bar := range c.Bars {
		y := chartGap + i*(chartBarH+chartGap)
		w := 0.0
		if maxV > 0 {
			w = bar.Value / maxV * span
		}
		if bar.Value > 0 && w < 2 {
			w = 2 // a small non-zero value stays visible
		}
		val := format(bar.Value)
		if bar.Note != "" {
			val += " (" + bar.Note + ")"
		}
		fmt.Fprintf(&b, `<g><title>%s : %s</title>`, esc(bar.Label), esc(val))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" class="chart-label">%s</text>`, chartLabelW-8, y+chartBarH*3/4-1, esc(shorten(bar.Label, 28)))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" class="chart-bar"/>`, chartLabelW, y, w, chartBarH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" class="chart-value">%s</text></g>`, float64(chartLabelW)+w+6, y+chartBarH*3/4-1, esc(val))
	}
	if len(c.Bars) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="chart-label">%s</text>`, 8, chartGap+chartBarH*3/4, esc(tr("chart_empty")))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// chartID makes an id for the chart's title from its text.
func chartID(title string) string {
	var b strings.Builder
	b.WriteString("c-")
	for _, r := range strings.ToLower(title) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else if b.Len() > 2 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// Columns is a column chart drawn on the server as SVG, for a series in
// time (the 12 months of the printable report): one column a bar, its
// value above, its label below (the month's first three letters, the
// full label in the column's <title>).
type Columns struct {
	Title, Desc string
	Bars        []Bar
}

// Column chart geometry, in SVG user units.
const (
	colsWidth  = 720
	colsHeight = 190
	colsTop    = 22 // room for the values
	colsBottom = 34 // room for the labels
)

// SVG renders the column chart.
func (c Columns) SVG() template.HTML {
	esc := template.HTMLEscapeString
	maxV := 0.0
	for _, b := range c.Bars {
		maxV = max(maxV, b.Value)
	}
	id := chartID(c.Title) + "-cols"
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart columns" viewBox="0 0 %d %d" role="img" aria-labelledby="%[3]s-t %[3]s-d">`,
		colsWidth, colsHeight, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%[1]s-d">%s</desc>`, id, esc(c.Title), esc(c.Desc))
	n := max(1, len(c.Bars))
	slot := float64(colsWidth) / float64(n)
	span := float64(colsHeight - colsTop - colsBottom)
	base := float64(colsHeight - colsBottom)
	for i, bar := range c.Bars {
		h := 0.0
		if maxV > 0 {
			h = bar.Value / maxV * span
		}
		if bar.Value > 0 && h < 2 {
			h = 2
		}
		x := float64(i)*slot + slot*0.15
		val := frInt(int64(bar.Value + 0.5))
		fmt.Fprintf(&b, `<g><title>%s : %s</title>`, esc(bar.Label), esc(val))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="chart-bar"/>`, x, base-h, slot*0.7, h)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="chart-value">%s</text>`, x+slot*0.35, base-h-5, esc(val))
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" class="chart-label">%s</text></g>`, x+slot*0.35, colsHeight-colsBottom+16, esc(shortMonth(bar.Label)))
	}
	fmt.Fprintf(&b, `<line x1="0" y1="%.1f" x2="%d" y2="%.1f" class="chart-axis"/>`, base, colsWidth, base)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// shortMonth cuts "septembre 2026" to "sept. 26" (the label as given
// when it is not a month).
func shortMonth(label string) string {
	name, year, ok := strings.Cut(label, " ")
	if !ok || len(year) != 4 {
		return label
	}
	short := map[string]string{"janvier": "janv.", "février": "févr.", "mars": "mars", "avril": "avr.", "mai": "mai", "juin": "juin",
		"juillet": "juil.", "août": "août", "septembre": "sept.", "octobre": "oct.", "novembre": "nov.", "décembre": "déc."}[name]
	if short == "" {
		return label
	}
	return short + " " + year[2:]
}
