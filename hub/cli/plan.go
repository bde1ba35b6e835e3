package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"numeribus/hub/plan"
	hreport "numeribus/hub/report"
	"numeribus/internal/apperr"
	"numeribus/internal/domain"
	"numeribus/internal/frnum"
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
			return usagef("plan attend une sous-commande : add, list ou cancel")
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
	return usagef("plan : sous-commande inconnue « %s » (add, list ou cancel)", args[0])
}

func planUsage(w io.Writer) {
	fmt.Fprint(w, `Usage : hub plan <sous-commande> [options]

  add     planifie un arrêt : --team ÉQUIPE --vehicle VÉHICULE --date AAAA-MM-JJ [--start HH:MM --end HH:MM] --place LIEU --commune INSEE
  list    arrêts prévus et réalisés : [--team ÉQUIPE] [--vehicle VÉHICULE] [--from AAAA-MM-JJ] [--to AAAA-MM-JJ] [--cancelled] [--json]
  cancel  annule un arrêt (définitif) : --id ID [--team ÉQUIPE]

Les postes de l'équipe reçoivent le planning à leur prochaine synchronisation.
Un arrêt est réalisé quand les médiateurs le marquent (realise) ou y
enregistrent une activité.
`)
}

func runPlanAdd(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "plan add", "--data DOSSIER --team ÉQUIPE --vehicle VÉHICULE --date AAAA-MM-JJ [--start HH:MM --end HH:MM] --place LIEU --commune INSEE [--json]", &data)
	team := fs.String("team", "", "équipe dont les postes reçoivent l'arrêt (ex. cd88)")
	var s domain.TourStop
	fs.StringVar(&s.Vehicule, "vehicle", "", "véhicule (ex. « Numéribus 3 »)")
	fs.StringVar(&s.Date, "date", "", "date de l'arrêt, AAAA-MM-JJ (ou JJ/MM/AAAA)")
	fs.StringVar(&s.HeureDebut, "start", "", "heure de début, HH:MM")
	fs.StringVar(&s.HeureFin, "end", "", "heure de fin, HH:MM")
	fs.StringVar(&s.Lieu, "place", "", "lieu (ex. « Place de la mairie »)")
	fs.StringVar(&s.Commune, "commune", "", "code INSEE de la commune (ex. 88413)")
	asJSON := fs.Bool("json", false, "affiche l'arrêt planifié en un objet JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *team == "" {
		return usagef("plan add : --team est obligatoire")
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	got, err := st.PlanStops(ctx, *team, []domain.TourStop{s}, time.Now())
	if errors.Is(err, plan.ErrUnknownTeam) {
		return frErr(apperr.Invalid, err, "équipe « %s » inconnue : aucun poste ni code d'inscription de cette équipe au hub ; rien n'a été planifié", *team)
	}
	if err != nil {
		return err
	}
	p := got[0]
	if *asJSON {
		return json.NewEncoder(e.Stdout).Encode(p)
	}
	fmt.Fprintf(e.Stdout, "Arrêt %s planifié pour l'équipe %s : %s, le %s %s, %s, %s.\nLes postes de l'équipe le reçoivent à leur prochaine synchronisation.\n",
		p.ID, *team, p.Vehicule, hreport.FormatDay(dayOf(p.Date)), hours(p.HeureDebut, p.HeureFin), p.Lieu, communeLabel(p.Commune))
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
	fs := newFlags(e, "plan list", "--data DOSSIER [--team ÉQUIPE] [--vehicle VÉHICULE] [--from AAAA-MM-JJ] [--to AAAA-MM-JJ] [--cancelled] [--json]", &data)
	var f plan.Filter
	fs.StringVar(&f.Team, "team", "", "cette équipe seulement")
	fs.StringVar(&f.Vehicle, "vehicle", "", "ce véhicule seulement")
	fs.StringVar(&f.From, "from", "", "première date, AAAA-MM-JJ")
	fs.StringVar(&f.To, "to", "", "dernière date, AAAA-MM-JJ")
	fs.BoolVar(&f.Cancelled, "cancelled", false, "avec les arrêts annulés")
	asJSON := fs.Bool("json", false, "sortie JSON : les arrêts et les comptes par véhicule")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := f.Check(); err != nil {
		return usagef("plan list : --from et --to sont des dates AAAA-MM-JJ, --from avant --to")
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
	fmt.Fprintln(tw, "DATE\tHORAIRES\tÉQUIPE\tVÉHICULE\tLIEU\tCOMMUNE\tRÉALISÉ\tACTIVITÉS\tID")
	for _, s := range out.Stops {
		made := "non"
		switch {
		case s.Cancelled:
			made = "annulé"
		case s.Made:
			made = "oui"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", hreport.FormatDay(dayOf(s.Date)), hours(s.HeureDebut, s.HeureFin), s.Team, s.Vehicule,
			s.Lieu, communeLabel(s.Commune), made, frnum.Int(s.Activities), s.ID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(e.Stdout)
	tw = tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ÉQUIPE\tVÉHICULE\tPRÉVUS\tRÉALISÉS\tCOMMUNES ATTEINTES")
	for _, v := range out.Vehicles {
		names := make([]string, len(v.Communes))
		for i, c := range v.Communes {
			names[i] = communeLabel(c)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Team, v.Vehicle, frnum.Int(v.Planned), frnum.Int(v.Made), strings.Join(names, ", "))
	}
	return tw.Flush()
}

func runPlanCancel(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "plan cancel", "--data DOSSIER --id ID [--team ÉQUIPE]", &data)
	idText := fs.String("id", "", "identifiant de l'arrêt (donné par « hub plan list »)")
	team := fs.String("team", "", "refuse si l'arrêt n'est pas de cette équipe")
	if err := parse(fs, args); err != nil {
		return err
	}
	id, err := ident.Parse(*idText)
	if err != nil {
		return usagef("plan cancel : --id « %s » n'est pas un identifiant d'arrêt", *idText)
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	switch err := st.CancelStop(ctx, *team, id, time.Now()); {
	case errors.Is(err, plan.ErrNotFound):
		return frErr(apperr.NotFound, err, "arrêt %s introuvable%s : « hub plan list » donne les identifiants", id, inTeam(*team))
	case errors.Is(err, plan.ErrCancelled):
		return frErr(apperr.State, err, "l'arrêt %s est déjà annulé", id)
	case err != nil:
		return err
	}
	fmt.Fprintf(e.Stdout, "Arrêt %s annulé ; les postes de l'équipe le retirent à leur prochaine synchronisation.\n", id)
	return nil
}

func hours(start, end string) string {
	if start == "" && end == "" {
		return ""
	}
	return start + "–" + end
}

// inTeam says " dans l'équipe T" when a team was given.
func inTeam(team string) string {
	if team == "" {
		return ""
	}
	return " dans l'équipe " + team
}

// dayOf is the day of an AAAA-MM-JJ date, 0 when it is not one.
func dayOf(iso string) int {
	d, _ := hreport.ParseDay(iso)
	return d
}

// communeLabel is "Name (code)", or the code alone when unknown.
func communeLabel(code string) string {
	if c, ok := territoire.Default().Commune(code); ok {
		return c.Nom + " (" + code + ")"
	}
	return code
}
