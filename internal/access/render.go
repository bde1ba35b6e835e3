package access

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"io"
	"strings"
)

// style is the document's whole style sheet, inline so that the file
// stands alone (saved, sent, printed) and prints on A4.
const style = `body{font-family:system-ui,sans-serif;font-size:11pt;line-height:1.4;color:#111;background:#fff;max-width:48em;margin:1.5em auto;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .5em}h2{font-size:1.2em;border-bottom:2px solid #333;margin:1.5em 0 .5em;padding-bottom:.2em}
h3{font-size:1.05em;margin:1em 0 .3em}p.status{font-style:italic;margin:.2em 0}
dl{display:grid;grid-template-columns:minmax(10em,auto) 1fr;gap:.2em 1em;margin:.3em 0}dt{font-weight:600}dd{margin:0}
article{border:1px solid #999;border-radius:4px;padding:.5em .8em;margin:.6em 0;break-inside:avoid}
ol.history{font-size:.95em;margin:.3em 0 0;padding-left:1.5em}footer{margin-top:2em;border-top:1px solid #999;font-size:.95em}
@page{size:A4;margin:15mm}@media print{body{margin:0;max-width:none}a{color:#111}}`

// StyleHash is the Content-Security-Policy source of the inline style
// sheet ('sha256-…'): a server that sends the document under a CSP
// without 'unsafe-inline' adds it to style-src.
var StyleHash = func() string {
	sum := sha256.Sum256([]byte(style))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var page = template.Must(template.New("access").Parse(`<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>{{.Style}}</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
{{range .Intro}}<p>{{.}}</p>
{{end}}{{range .Parts}}<section id="{{.ID}}" aria-labelledby="h-{{.ID}}">
<h2 id="h-{{.ID}}">{{.Title}}</h2>
{{range .Items}}<article>
<h3>{{.Heading}}</h3>
{{with .Status}}<p class="status">{{.}}</p>
{{end}}{{with .Rows}}<dl>
{{range .}}<dt>{{.Label}}</dt><dd>{{.Value}}</dd>
{{end}}</dl>
{{end}}{{with .History}}<p>Historique des enregistrements :</p>
<ol class="history">
{{range .}}<li>{{.}}</li>
{{end}}</ol>
{{end}}</article>
{{else}}<p>{{.Empty}}</p>
{{end}}</section>
{{end}}</main>
<footer>
{{range .Footer}}<p>{{.}}</p>
{{end}}</footer>
</body>
</html>
`))

// Write writes the dossier as plain text when name ends in .txt, as HTML
// otherwise.
func Write(w io.Writer, d *Dossier, name string) error {
	if strings.HasSuffix(strings.ToLower(name), ".txt") {
		return WriteText(w, d)
	}
	return WriteHTML(w, d)
}

// Records counts the records the dossier holds about the person.
func (d *Dossier) Records() int {
	n := len(d.Consents) + len(d.Assessments) + len(d.Activities)
	if d.Beneficiary != nil {
		n++
	}
	return n
}

// WriteHTML writes the dossier as one HTML document in French.
func WriteHTML(w io.Writer, d *Dossier) error {
	doc := build(d)
	return page.Execute(w, struct {
		document
		Style template.CSS
	}{doc, template.CSS(style)})
}

// WriteText writes the dossier as plain text in French, lines of at most
// a printer's width where the values allow.
func WriteText(w io.Writer, d *Dossier) error {
	doc := build(d)
	b := bufio.NewWriter(w)
	line := func(s string) { b.WriteString(s + "\n") }
	line(strings.ToUpper(doc.Title))
	line(strings.Repeat("=", len([]rune(doc.Title))))
	line("")
	for _, p := range doc.Intro {
		line(p)
	}
	for _, s := range doc.Parts {
		line("")
		line(s.Title)
		line(strings.Repeat("-", len([]rune(s.Title))))
		if len(s.Items) == 0 {
			line(s.Empty)
		}
		for _, it := range s.Items {
			line("")
			line("* " + it.Heading)
			if it.Status != "" {
				line("  (" + it.Status + ")")
			}
			for _, r := range it.Rows {
				line("  " + r.Label + " : " + r.Value)
			}
			if len(it.History) > 0 {
				line("  Historique des enregistrements :")
				for _, h := range it.History {
					line("    - " + h)
				}
			}
		}
	}
	line("")
	for _, p := range doc.Footer {
		line(p)
	}
	return b.Flush()
}
