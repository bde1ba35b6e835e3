package ui

// The header's texts when it is folded on a small or zoomed screen
// (layout.html, app.js), kept apart from text_fr.go and merged into fr.
var frA11y = map[string]string{
	"menu":               "Menu",
	"sync_pending_short": "%d en attente",
	"sync_problem_short": "problème",
}

func init() {
	for k, v := range frA11y {
		if _, dup := fr[k]; dup {
			panic("ui: text key " + k + " defined twice")
		}
		fr[k] = v
	}
}
