package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"numeribus/hub/plan"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/territoire"
)

// runPlan is `hub plan add|list|cancel`: the coordinators' tour planning
// (hub/plan). It writes through the same store as `hub serve`, safely
// beside a running hub (SQLite serializes the writers); the team's agents
// receive the plan at their next sync.
func runPlan(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		planUsage(e.Stderr)
		if len(args) == 0 {
			return usagef("plan: add, list or cancel?")
		}
		return nil
	}
	switch args[0] {
	case "add":
		return runPlanAdd(ctx, e, args[1:])
	case "list":
		return runPlanList(ctx, e, args[1:])
	case "cancel":
		return runPlanCancel(ctx, e, args[1:])
	}
	planUsage(e.Stderr)
	return usagef("plan: unknown subcommand %q (add, list or cancel)", args[0])
}

func planUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: hub plan <subcommand> [options]

  add     plans a stop: --team T --vehicle V --date AAAA-MM-JJ [--start HH:MM --end HH:MM] --place P --commune INSEE
  list    stops planned vs made: [--team T] [--vehicle V] [--from AAAA-MM-JJ] [--to AAAA-MM-JJ] [--cancelled] [--json]
  cancel  cancels a stop (final): --id ID [--team T]

The team's agents receive the plan at their next sync. Stops are made when
the mediators mark them (realise) or record an activity at them.
`)
}

func runPlanAdd(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "plan add", "--data DIR --team T --vehicle V --date AAAA-MM-JJ [--start HH:MM --end HH:MM] --place P --commune INSEE [--json]", &data)
	team := fs.String("team", "", "team whose agents receive the stop (e.g. cd88)")
	var s domain.TourStop
	fs.StringVar(&s.Vehicule, "vehicle", "", "vehicle (e.g. \"Numéribus 3\")")
	fs.StringVar(&s.Date, "date", "", "date of the stop, AAAA-MM-JJ (or JJ/MM/AAAA)")
	fs.StringVar(&s.HeureDebut, "start", "", "start time, HH:MM")
	fs.StringVar(&s.HeureFin, "end", "", "end time, HH:MM")
	fs.StringVar(&s.Lieu, "place", "", "place (e.g. \"Place de la mairie\")")
	fs.StringVar(&s.Commune, "commune", "", "INSEE code of the commune (e.g. 88413)")
	asJSON := fs.Bool("json", false, "print the stop planned as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *team == "" {
		return usagef("plan add: --team is required")
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	got, err := st.PlanStops(ctx, *team, []domain.TourStop{s}, time.Now())
	if err != nil {
		return err
	}
	p := got[0]
	if *asJSON {
		return json.NewEncoder(e.Stdout).Encode(p)
	}
	fmt.Fprintf(e.Stdout, "Stop %s planned for team %s: %s, %s %s, %s (%s).\nThe team's agents receive it at their next sync.\n",
		p.ID, *team, p.Vehicule, p.Date, hours(p.HeureDebut, p.HeureFin), p.Lieu, communeLabel(p.Commune))
	return nil
}

// planList is what `hub plan list --json` prints: the stops, and per
// vehicle the counts the dashboard shows.
type planList struct {
	Stops    []plan.Stop           `json:"stops"`
	Vehicles []plan.VehicleSummary `json:"vehicles"`
}

func runPlanList(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "plan list", "--data DIR [--team T] [--vehicle V] [--from AAAA-MM-JJ] [--to AAAA-MM-JJ] [--cancelled] [--json]", &data)
	var f plan.Filter
	fs.StringVar(&f.Team, "team", "", "only this team")
	fs.StringVar(&f.Vehicle, "vehicle", "", "only this vehicle")
	fs.StringVar(&f.From, "from", "", "first date, AAAA-MM-JJ")
	fs.StringVar(&f.To, "to", "", "last date, AAAA-MM-JJ")
	fs.BoolVar(&f.Cancelled, "cancelled", false, "include cancelled stops")
	asJSON := fs.Bool("json", false, "JSON output: stops and per-vehicle counts")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.Check(); err != nil {
		return usagef("plan list: %v", err)
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	stops, err := st.PlannedStops(ctx, f)
	if err != nil {
		return err
	}
	out := planList{Stops: stops, Vehicles: plan.Summarize(stops)}
	if out.Stops == nil {
		out.Stops = []plan.Stop{}
	}
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tHOURS\tTEAM\tVEHICLE\tPLACE\tCOMMUNE\tMADE\tACTIVITIES\tID")
	for _, s := range out.Stops {
		made := "no"
		switch {
		case s.Cancelled:
			made = "cancelled"
		case s.Made:
			made = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Date, hours(s.HeureDebut, s.HeureFin), s.Team, s.Vehicule,
			s.Lieu, communeLabel(s.Commune), made, s.Activities, s.ID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.Stdout)
	tw = tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEAM\tVEHICLE\tPLANNED\tMADE\tCOMMUNES REACHED")
	for _, v := range out.Vehicles {
		names := make([]string, len(v.Communes))
		for i, c := range v.Communes {
			names[i] = communeLabel(c)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", v.Team, v.Vehicle, v.Planned, v.Made, strings.Join(names, ", "))
	}
	return tw.Flush()
}

func runPlanCancel(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "plan cancel", "--data DIR --id ID [--team T]", &data)
	idText := fs.String("id", "", "id of the stop (from `hub plan list`)")
	team := fs.String("team", "", "refuse unless the stop belongs to this team")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := ident.Parse(*idText)
	if err != nil {
		return usagef("plan cancel: --id %q is not a stop id", *idText)
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CancelStop(ctx, *team, id, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Stop %s cancelled; the team's agents drop it at their next sync.\n", id)
	return nil
}

func hours(start, end string) string {
	if start == "" && end == "" {
		return ""
	}
	return start + "–" + end
}

// communeLabel is "Name (code)", or the code alone when unknown.
func communeLabel(code string) string {
	if c, ok := territoire.Default().Commune(code); ok {
		return c.Nom + " (" + code + ")"
	}
	return code
}
