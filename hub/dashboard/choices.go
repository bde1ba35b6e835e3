package dashboard

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"numeribus/hub/report"
)

// The filters offer lists — the teams, vehicles and mediators of the
// reader's scope — rather than free text that a typo turns into an empty
// report. The lists come from a scan of the scope's last 12 months of
// activities and its planned stops (report.ComputeChoices), which costs
// about as much as the vehicles report: they are kept a few minutes per
// scope (DefaultChoicesTTL), and dropped when a stop is planned here.

// DefaultChoicesTTL is how long the filters' lists of one scope are
// reused: a new vehicle or mediator shows in them within this time.
const DefaultChoicesTTL = 5 * time.Minute

type choicesEntry struct {
	at time.Time
	c  report.Choices
}

// choicesCache holds the lists per scope.
type choicesCache struct {
	mu sync.Mutex
	m  map[string]choicesEntry
}

func (c *choicesCache) get(key string, now time.Time, ttl time.Duration) (report.Choices, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || now.Sub(e.at) >= ttl || now.Before(e.at) {
		return report.Choices{}, false
	}
	return e.c, true
}

func (c *choicesCache) put(key string, now time.Time, ch report.Choices) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > 1000 {
		c.m = map[string]choicesEntry{}
	}
	c.m[key] = choicesEntry{at: now, c: ch}
}

// clear forgets every list (a stop was planned: its vehicle may be new).
func (c *choicesCache) clear() {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
}

// choices returns the filters' lists for the request's user: from the
// cache, or computed. A viewer gets no mediators (names of people). An
// admin's teams include every team with a device at the hub, active or
// not yet. A failure leaves the lists empty (logged): the filters then
// offer only what is selected.
func (s *Server) choices(r *http.Request) report.Choices {
	u := &whoOf(r).user
	sc, err := scopeOf(u)
	if err != nil || s.cfg.Reports == nil {
		return report.Choices{}
	}
	key := strings.Join(u.Territories, " ")
	if !u.Territorial() {
		key = "*"
	}
	now := s.cfg.Now()
	ttl := s.cfg.ChoicesTTL
	if ttl == 0 {
		ttl = DefaultChoicesTTL
	}
	c, ok := s.choicesCache.get(key, now, ttl)
	if !ok {
		if c, err = report.ComputeChoices(r.Context(), s.cfg.Reports, sc, s.options()); err != nil {
			s.log.Error("listing the filters' choices failed", "err", err)
			return report.Choices{}
		}
		if !u.Territorial() {
			if ds, err := s.cfg.Store.Devices(r.Context()); err == nil {
				for _, d := range ds {
					if d.Team != "" && !slices.Contains(c.Equipes, d.Team) {
						c.Equipes = append(c.Equipes, d.Team)
					}
				}
				slices.Sort(c.Equipes)
			}
		}
		if ttl > 0 {
			s.choicesCache.put(key, now, c)
		}
	}
	if !u.Role.SeesPersonalData() {
		c.Mediateurs = nil
	}
	return c
}

// option is one choice of a filter's list.
type option struct {
	Value, Label string
	Selected     bool
}

// options makes a filter's list from values, "all" first, the selected
// value kept even when the list lacks it (a link from elsewhere, a
// vehicle of an older period).
func options(values []string, selected, all string) []option {
	out := []option{{Value: "", Label: all, Selected: selected == ""}}
	found := false
	for _, v := range values {
		out = append(out, option{Value: v, Label: v, Selected: v == selected})
		found = found || v == selected
	}
	if selected != "" && !found {
		out = append(out, option{Value: selected, Label: selected, Selected: true})
	}
	return out
}
