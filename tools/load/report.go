package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"
)

// Report is the JSON output of a run. Durations are measured on the
// monotonic clock. Walls: push_wall_s runs from the release (burst, two)
// or the first arrival (morning) to the last agent's last ack; pull_wall_s
// from the start of the pull phase (burst, two) or the first arrival
// (morning) to the last agent's last page. last_ack_max_s is the latest
// an agent's last ack came after its own release: the starvation figure.
type Report struct {
	Scenario        string  `json:"scenario"`
	Backend         string  `json:"backend"`
	Agents          int     `json:"agents"`
	Changes         int     `json:"changes"`
	Teams           int     `json:"teams"`
	BatchesPerAgent int     `json:"batches_per_agent"`
	SetupS          float64 `json:"setup_s"`
	PushWallS       float64 `json:"push_wall_s"`
	PullWallS       float64 `json:"pull_wall_s"`
	AckP50Ms        float64 `json:"ack_p50_ms"`
	AckP99Ms        float64 `json:"ack_p99_ms"`
	AckMaxMs        float64 `json:"ack_max_ms"`
	LastAckMaxS     float64 `json:"last_ack_max_s"`
	PullP50Ms       float64 `json:"pull_p50_ms"` // one agent's pull, first page to last
	PullMaxMs       float64 `json:"pull_max_ms"`
	ConnectErrors   int64   `json:"connect_errors"`
	BusyAnswers     int64   `json:"busy_answers"`
	SessionsCut     int64   `json:"sessions_cut"` // connections lost after the Welcome (a killed hub, a timeout)
	PushesComplete  string  `json:"pushes_complete"`
	PullsComplete   string  `json:"pulls_complete"`
	ChangesAccepted uint64  `json:"changes_accepted"` // in the hub's log after the run
	Rejected        int     `json:"rejected"`         // changes the hub refused (Ack.Rejected)
	HubPeakRSSMiB   float64 `json:"hub_peak_rss_mib"` // the largest of the instances
	HubMaxFDs       int     `json:"hub_max_fds"`
	// Idle: the hub's memory after the connections were held open, the
	// time to open them, and the revocation.
	HubRSSMiB    *float64 `json:"hub_rss_mib"`
	ConnectS     *float64 `json:"connect_s"`
	RevocationMs *float64 `json:"revocation_ms"`
	RevokeCmdMs  *float64 `json:"revoke_cmd_ms"`

	// SlowestAcks are the batches that waited longest (at most 20, a
	// second or more): when they left, counted from the first release,
	// and how long they waited — a stall shows as several at one time.
	SlowestAcks []SlowAck `json:"slowest_acks"`

	// PostgresCPUS is the PostgreSQL server's CPU time over the scenario
	// (its backends included), when it runs on this machine: with the
	// hubs' cpu_s, what a run cost, whatever else ran beside it.
	PostgresCPUS *float64 `json:"postgres_cpu_s"`

	Hubs     []HubFigures `json:"hubs"`
	OK       bool         `json:"ok"`
	Problems []string     `json:"problems"`
	Machine  Machine      `json:"machine"`
	Started  time.Time    `json:"started"`
}

// HubFigures are one instance's.
type HubFigures struct {
	Name       string  `json:"name"`
	PeakRSSMiB float64 `json:"peak_rss_mib"` // VmHWM
	// PeakAnonMiB is the most RssAnon sampled: the heap and stacks,
	// without the database file SQLite maps.
	PeakAnonMiB float64 `json:"peak_anon_mib"`
	// PeakAfterPushMiB is VmHWM when the push phase ended (burst, two):
	// what the pulls added shows against PeakRSSMiB.
	PeakAfterPushMiB *float64 `json:"peak_rss_after_push_mib"`
	CPUS             float64  `json:"cpu_s"` // user + system, the whole run
	MaxFDs           int      `json:"max_fds"`
	Killed           bool     `json:"killed"`
}

// SlowAck is one slow batch of the report.
type SlowAck struct {
	SentS  float64 `json:"sent_s"`
	WaitMs float64 `json:"wait_ms"`
}

// Machine says where the figures come from: the generator shares the
// machine's cores with the hub.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GOOS      string `json:"goos"`
	GoVersion string `json:"go"`
	FileLimit uint64 `json:"nofile"`
	// GeneratorCPUS is the generator's own CPU time: it shares the
	// machine's cores with the hub.
	GeneratorCPUS float64 `json:"generator_cpu_s"`
}

func machine(nofile uint64) Machine {
	return Machine{CPUs: runtime.NumCPU(), GOOS: runtime.GOOS, GoVersion: runtime.Version(), FileLimit: nofile}
}

func (r *Report) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// percentile returns the p-th percentile (nearest rank) of sorted ds.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return round(float64(d) / float64(time.Millisecond)) }
func secs(d time.Duration) float64 {
	return round(d.Seconds())
}
func round(x float64) float64 { return math.Round(x*1000) / 1000 }
func ptr(x float64) *float64  { return &x }

// slowest returns the n longest waits of agents' slow batches, in the
// order they were sent.
func slowest(agents []*agent, n int) []SlowAck {
	var all []slowAck
	var first time.Time
	for _, a := range agents {
		all = append(all, a.slow...)
		if !a.release.IsZero() && (first.IsZero() || a.release.Before(first)) {
			first = a.release
		}
	}
	slices.SortFunc(all, func(x, y slowAck) int { return cmp.Compare(y.wait, x.wait) })
	all = all[:min(n, len(all))]
	slices.SortFunc(all, func(x, y slowAck) int { return x.sent.Compare(y.sent) })
	out := make([]SlowAck, len(all))
	for i, s := range all {
		out[i] = SlowAck{secs(s.sent.Sub(first)), ms(s.wait)}
	}
	return out
}

// measure fills the figures the agents recorded.
func (r *Report) measure(agents []*agent, p phases) {
	r.PushWallS, r.PullWallS = secs(p.push), secs(p.pull)
	var acks, pulls []time.Duration
	var lastAck time.Duration
	pushes, pulled := 0, 0
	for _, a := range agents {
		acks = append(acks, a.acks...)
		if !a.lastAck.IsZero() {
			lastAck = max(lastAck, a.lastAck.Sub(a.release))
		}
		if !a.pullEnd.IsZero() {
			pulls = append(pulls, a.pullEnd.Sub(a.pullStart))
		}
		if a.pushed {
			pushes++
		}
		if a.pulledAll {
			pulled++
		}
		r.Rejected += a.rejected
	}
	slices.Sort(acks)
	slices.Sort(pulls)
	r.SlowestAcks = slowest(agents, 20)
	r.AckP50Ms, r.AckP99Ms = ms(percentile(acks, 50)), ms(percentile(acks, 99))
	r.AckMaxMs = ms(percentile(acks, 100))
	r.PullP50Ms, r.PullMaxMs = ms(percentile(pulls, 50)), ms(percentile(pulls, 100))
	r.LastAckMaxS = secs(lastAck)
	r.PushesComplete = fmt.Sprintf("%d/%d", pushes, len(agents))
	r.PullsComplete = fmt.Sprintf("%d/%d", pulled, len(agents))
	if r.Scenario == "idle" {
		r.PushesComplete, r.PullsComplete = "n/a", "n/a"
		r.HubRSSMiB, r.ConnectS = ptr(round(p.idleRSSMiB)), ptr(secs(p.connect))
		r.RevokeCmdMs = ptr(ms(p.revokeCmd))
		if p.revocation >= 0 {
			r.RevocationMs = ptr(ms(p.revocation))
		}
	}
}

// hubs fills the figures sampled of the hub processes.
func (r *Report) hubs(hs []*hubProc, p phases) {
	for i, h := range hs {
		peak, _, fds := h.figures()
		anon, cpu := h.more()
		hf := HubFigures{Name: h.name, PeakRSSMiB: round(peak), PeakAnonMiB: round(anon), CPUS: secs(cpu), MaxFDs: fds, Killed: h.killed.Load()}
		if i < len(p.peakAfterPush) {
			hf.PeakAfterPushMiB = ptr(round(p.peakAfterPush[i]))
		}
		r.Hubs = append(r.Hubs, hf)
		r.HubPeakRSSMiB = max(r.HubPeakRSSMiB, round(peak))
		r.HubMaxFDs = max(r.HubMaxFDs, fds)
	}
}

// write writes the report as indented JSON to path.
func (r *Report) write(path string) error {
	if r.Problems == nil {
		r.Problems = []string{}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// print writes the short table a person reads after `make load`.
func (r *Report) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s on %s: %d agents × %d changes, %d teams\n", r.Scenario, r.Backend, r.Agents, r.Changes, r.Teams)
	if r.Scenario == "idle" {
		fmt.Fprintf(tw, "connections\t%d open in %s s\n", r.Agents, fmtp("%.1f", r.ConnectS))
		fmt.Fprintf(tw, "hub memory\t%s MiB held open, peak %.1f MiB, %d fds\n", fmtp("%.1f", r.HubRSSMiB), r.HubPeakRSSMiB, r.HubMaxFDs)
		fmt.Fprintf(tw, "revocation\t%s ms after `hub revoke` (%s ms) returned\n", fmtp("%.0f", r.RevocationMs), fmtp("%.0f", r.RevokeCmdMs))
	} else {
		fmt.Fprintf(tw, "push\t%.2f s wall, ack p50 %.0f ms, p99 %.0f ms, max %.0f ms, last ack of an agent %.2f s after release\n",
			r.PushWallS, r.AckP50Ms, r.AckP99Ms, r.AckMaxMs, r.LastAckMaxS)
		fmt.Fprintf(tw, "pull\t%.2f s wall, one agent's pull p50 %.0f ms, max %.0f ms\n", r.PullWallS, r.PullP50Ms, r.PullMaxMs)
		fmt.Fprintf(tw, "complete\tpushes %s, pulls %s, %d changes in the hub's log\n", r.PushesComplete, r.PullsComplete, r.ChangesAccepted)
		for _, h := range r.Hubs {
			k := ""
			if h.Killed {
				k = " (killed midway)"
			}
			fmt.Fprintf(tw, "%s\tpeak %.1f MiB (%s at the end of the pushes, anonymous %.1f), %d fds, %.1f s CPU%s\n",
				h.Name, h.PeakRSSMiB, fmtp("%.1f", h.PeakAfterPushMiB), h.PeakAnonMiB, h.MaxFDs, h.CPUS, k)
		}
		if r.PostgresCPUS != nil {
			fmt.Fprintf(tw, "postgres	%.1f s CPU (the server and its backends); the generator %.1f s\n", *r.PostgresCPUS, r.Machine.GeneratorCPUS)
		}
	}
	fmt.Fprintf(tw, "errors\t%d connect errors, %d busy answers, %d sessions cut, %d refused changes\n", r.ConnectErrors, r.BusyAnswers, r.SessionsCut, r.Rejected)
	ok := "ok: every change once"
	if r.Scenario == "idle" {
		ok = "ok: every connection held, the revoked one cut"
	}
	if !r.OK {
		ok = fmt.Sprintf("FAILED: %d problem(s)", len(r.Problems))
	}
	fmt.Fprintf(tw, "verification\t%s\n", ok)
	tw.Flush()
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

func fmtp(format string, p *float64) string {
	if p == nil {
		return "—"
	}
	return fmt.Sprintf(format, *p)
}
