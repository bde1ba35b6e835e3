package main

import (
	"context"
	"fmt"
	"strings"

	"numeribus/internal/domain"
	"numeribus/internal/wire"
)

// tally groups the problems of many agents: one line per kind of problem
// with its count and the first few agents, not a thousand lines.
type tally struct {
	order []string
	n     map[string]int
	ex    map[string][]string
}

func (t *tally) add(kind, example string) {
	if t.n == nil {
		t.n, t.ex = map[string]int{}, map[string][]string{}
	}
	if t.n[kind] == 0 {
		t.order = append(t.order, kind)
	}
	t.n[kind]++
	if len(t.ex[kind]) < 3 {
		t.ex[kind] = append(t.ex[kind], example)
	}
}

func (t *tally) report(r *Report) {
	for _, k := range t.order {
		more := ""
		if t.n[k] > len(t.ex[k]) {
			more = ", …"
		}
		r.problem("%s: %d agent(s) (%s%s)", k, t.n[k], strings.Join(t.ex[k], "; "), more)
	}
}

// verify checks the outcome, exactly once, from the hub's store (opened
// after the hubs stopped) and from what each agent received: the log
// holds agents × changes, each device's mark is its last seq and it
// created one record per change, each agent pulled every teammate's
// changes once. revoked names the device the idle scenario revoked.
func verify(ctx context.Context, r *Report, cfg config, dir, db string, agents []*agent, revoked string) error {
	st, err := openStore(ctx, dir, db)
	if err != nil {
		return fmt.Errorf("opening the hub's store to check it: %w", err)
	}
	defer st.Close()
	stats, err := st.Stats(ctx)
	if err != nil {
		return fmt.Errorf("reading the hub's counts: %w", err)
	}
	devices, err := st.Devices(ctx)
	if err != nil {
		return fmt.Errorf("reading the hub's devices: %w", err)
	}
	r.ChangesAccepted = stats.Changes
	want := uint64(cfg.agents) * uint64(cfg.changes)
	if stats.Changes != want {
		r.problem("the hub's log holds %d changes, %d expected (%d agents × %d)", stats.Changes, want, cfg.agents, cfg.changes)
	}
	if stats.Devices != cfg.agents {
		r.problem("the hub has %d devices, %d expected", stats.Devices, cfg.agents)
	}
	members := make([]int, cfg.teams)
	for _, a := range agents {
		members[a.team]++
	}
	byID := make(map[string]*agent, len(agents))
	for _, a := range agents {
		byID[a.id] = a
	}
	var t tally
	for _, d := range devices {
		a := byID[d.ID]
		if a == nil {
			continue // the hub's own device (plans)
		}
		if d.HWM != uint64(cfg.changes) {
			t.add("a device's high-water mark is not its last change", fmt.Sprintf("%s at %d", a.name, d.HWM))
		}
		if n := stats.ByDevice[a.name][domain.KindActivity]; n != cfg.changes {
			t.add("a device's records at the hub are not its changes", fmt.Sprintf("%s: %d", a.name, n))
		}
		if d.Revoked() != (a.name == revoked) {
			t.add("revoked state wrong", fmt.Sprintf("%s revoked %v", a.name, d.Revoked()))
		}
	}
	for _, a := range agents {
		checkAgent(&t, cfg, a, members[a.team], revoked)
	}
	t.report(r)
	return nil
}

// checkAgent checks what one agent saw.
func checkAgent(t *tally, cfg config, a *agent, members int, revoked string) {
	if a.hwmWentBack {
		t.add("a Welcome's mark went below what the hub had acked", a.name)
	}
	if a.rejected > 0 {
		t.add("the hub refused valid changes", fmt.Sprintf("%s: %d", a.name, a.rejected))
	}
	if a.odds > 0 {
		t.add("pulled changes twice, out of order or from outside the team", fmt.Sprintf("%s: %d, %s", a.name, a.odds, a.odd[0]))
	}
	if cfg.scenario == "idle" {
		switch {
		case a.name == revoked && a.openAtEnd:
			t.add("the revoked device's connection stayed open", a.name)
		case a.name == revoked:
			if re, ok := a.closedErr.(*remoteError); !ok || re.Code != wire.CodeRevoked {
				t.add("the revoked device's connection closed without saying revoked", fmt.Sprintf("%s: %v", a.name, a.closedErr))
			}
		case !a.openAtEnd:
			t.add("an idle connection was closed", fmt.Sprintf("%s: %v", a.name, a.closedErr))
		}
		return
	}
	if a.pushErr != nil {
		t.add("push did not complete", a.pushErr.Error())
	}
	if a.pullErr != nil {
		t.add("pull did not complete", a.pullErr.Error())
	}
	if want := (members - 1) * cfg.changes; a.pulled != want {
		t.add("an agent did not pull (team members − 1) × changes", fmt.Sprintf("%s: %d, expected %d", a.name, a.pulled, want))
	}
}
