package report

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"numeribus/internal/ident"
)

// Vehicles is the activity per vehicle and per mediator over a period.
type Vehicles struct {
	Filter     Applied       `json:"filter"`
	Vehicules  []VehicleRow  `json:"vehicules"`
	Mediateurs []MediatorRow `json:"mediateurs"`
}

// VehicleRow is one vehicle. Activities that name no vehicle are grouped
// by the device that recorded them: Vehicule is "" and Appareil names it.
type VehicleRow struct {
	Vehicule        string `json:"vehicule"`
	Appareil        string `json:"appareil,omitempty"`
	Activites       int    `json:"activites"`
	Accompagnements int    `json:"accompagnements"`
	// Arrets: stops made — realised stops of the vehicle, and stops an
	// activity of it was recorded at.
	Arrets int `json:"arrets"`
	// Planifies: stops planned for the vehicle in the period (at the hub
	// or on a laptop), made or not — to set against Arrets.
	Planifies int `json:"planifies"`
	// Communes: distinct communes of its activities and realised stops.
	Communes   int    `json:"communes"`
	Mediateurs int    `json:"mediateurs"`
	Dernier    string `json:"dernier,omitempty"` // last activity, AAAA-MM-JJ
}

// MediatorRow is one mediator. Actif: at least one activity in the two
// months ending with the period (shared/DOMAIN.md).
type MediatorRow struct {
	Mediateur       string `json:"mediateur"`
	Activites       int    `json:"activites"`
	Accompagnements int    `json:"accompagnements"`
	Dernier         string `json:"dernier,omitempty"`
	Actif           bool   `json:"actif"`
}

// ComputeVehicles computes the per-vehicle and per-mediator activity of
// what f asks within scope s.
func ComputeVehicles(ctx context.Context, src Source, f Filter, s Scope, o Options) (*Vehicles, error) {
	q, err := query(f, s, o)
	if err != nil {
		return nil, err
	}
	type vacc struct {
		row      VehicleRow
		last     int
		stops    map[ident.ID]struct{}
		communes map[string]struct{}
		meds     map[string]struct{}
	}
	type macc struct {
		row  MediatorRow
		last int
	}
	vs := map[[2]string]*vacc{}
	veh := func(vehicule, device string) *vacc {
		key := [2]string{vehicule, ""}
		if vehicule == "" {
			key[1] = device
		}
		v := vs[key]
		if v == nil {
			v = &vacc{row: VehicleRow{Vehicule: key[0], Appareil: key[1]}, stops: map[ident.ID]struct{}{},
				communes: map[string]struct{}{}, meds: map[string]struct{}{}}
			vs[key] = v
		}
		return v
	}
	ms := map[string]*macc{}
	actifFrom := DayOf(DayTime(q.To).AddDate(0, -2, 1))
	scan := q
	scan.From = min(q.From, actifFrom)
	err = src.Activities(ctx, scan, func(a *ActivityFact) error {
		if a.Mediateur != "" && a.Day >= actifFrom {
			m := ms[a.Mediateur]
			if m == nil {
				m = &macc{row: MediatorRow{Mediateur: a.Mediateur}}
				ms[a.Mediateur] = m
			}
			m.row.Actif = true
		}
		if a.Day < q.From {
			return nil
		}
		v := veh(a.Vehicule, a.Device)
		v.row.Activites++
		v.row.Accompagnements += a.Participants
		v.last = max(v.last, a.Day)
		if !a.Arret.IsZero() {
			v.stops[a.Arret] = struct{}{}
		}
		if a.Commune != "" {
			v.communes[a.Commune] = struct{}{}
		}
		if a.Mediateur != "" {
			v.meds[a.Mediateur] = struct{}{}
			m := ms[a.Mediateur]
			if m == nil {
				m = &macc{row: MediatorRow{Mediateur: a.Mediateur}}
				ms[a.Mediateur] = m
			}
			m.row.Activites++
			m.row.Accompagnements += a.Participants
			m.last = max(m.last, a.Day)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("vehicles: reading activities: %w", err)
	}
	// Realised stops count for their vehicle, activity or not; with a
	// mediator filter only the stops of their activities do.
	if q.Mediateur == "" {
		err = src.TourStops(ctx, q, func(t *TourStopFact) error {
			if t.Vehicule == "" {
				return nil
			}
			v := veh(t.Vehicule, "")
			v.row.Planifies++
			if !t.Realise {
				return nil
			}
			v.stops[t.ID] = struct{}{}
			if t.Commune != "" {
				v.communes[t.Commune] = struct{}{}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("vehicles: reading stops: %w", err)
		}
	}
	out := &Vehicles{Filter: applied(f, q)}
	for _, v := range vs {
		v.row.Arrets, v.row.Communes, v.row.Mediateurs, v.row.Dernier = len(v.stops), len(v.communes), len(v.meds), isoDay(v.last)
		out.Vehicules = append(out.Vehicules, v.row)
	}
	slices.SortFunc(out.Vehicules, func(a, b VehicleRow) int {
		if c := cmp.Compare(a.Vehicule, b.Vehicule); c != 0 {
			return c
		}
		return cmp.Compare(a.Appareil, b.Appareil)
	})
	// A mediator active in the last two months but only before a short
	// period is listed too, with no activity in it.
	for _, m := range ms {
		m.row.Dernier = isoDay(m.last)
		out.Mediateurs = append(out.Mediateurs, m.row)
	}
	slices.SortFunc(out.Mediateurs, func(a, b MediatorRow) int { return cmp.Compare(a.Mediateur, b.Mediateur) })
	return out, nil
}
