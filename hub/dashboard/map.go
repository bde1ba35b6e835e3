package dashboard

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"numeribus/hub/accounts"
	"numeribus/hub/places"
	"numeribus/hub/report"
	"numeribus/internal/apperr"
	"numeribus/internal/territoire/contours"
)

// The map of a territory (issue #15): where the bus has been, where it is
// planned, where nobody goes, and the white zones far from any fixed
// mediation place, one click from planning a stop there. The figures come
// from hub/report (ComputeMap), the drawing from mapsvg.go, the list of
// places from a file a coordinator imports here (hub/places).

// Places keeps the imported list of mediation places (the hub's stores).
type Places = places.Store

// maxPlacesUpload bounds an imported file: the national lists are tens
// of megabytes.
const maxPlacesUpload = 256 << 20

// actionPlacesImported is the audit action of an import.
const (
	actionPlacesImported accounts.Action = "places_imported"
	actionPlacesRefused  accounts.Action = "places_import_refused"
)

// plannedAhead is how far ahead the map marks planned stops.
const plannedAheadMonths = 6

// mapRoutes mounts the map, its JSON and the import of places.
func (s *Server) mapRoutes(mux *http.ServeMux) {
	mux.Handle("GET /carte", s.authed(s.getMap))
	mux.Handle("GET /api/map", s.authed(s.apiMap))
	mux.Handle("POST /carte/lieux", s.authedLimit(maxPlacesUpload, s.postPlaces))
}

// mapData is the map page.
type mapData struct {
	reportPage
	M         *report.Map
	SVG       template.HTML
	Legend    []legendItem
	Rayon     string // as typed
	CanImport bool
	Import    places.Import
	HasImport bool
	// Problems of the import form; Done after an import.
	ImportProblem string
	Credit        string
	Never         []report.MapCommune // the first of M.JamaisVisitees
	Query         string              // the filter, for links and the import form
}

// legendItem is one entry of the legend.
type legendItem struct {
	Class int
	Label string
	Count int
}

// maxNeverListed bounds the list of never-visited communes shown (the
// table has them all).
const maxNeverListed = 30

// canImportPlaces: administrators and coordinators import the list.
func canImportPlaces(u *accounts.User) bool { return u.Role.SeesPersonalData() }

// readRadius reads the white zones' radius in km: 1 to 100, the default
// when empty.
func readRadius(r *http.Request) (float64, string, error) {
	typed := strings.TrimSpace(r.URL.Query().Get("rayon"))
	if typed == "" {
		return report.DefaultRadiusKm, "", nil
	}
	v, err := strconv.ParseFloat(strings.Replace(typed, ",", ".", 1), 64)
	if err != nil || v < 1 || v > report.MaxDistanceKm {
		return 0, typed, &errFilter{apperr.Usage, tr("map_bad_radius", typed)}
	}
	return v, typed, nil
}

// computeMap computes the map of the request's filter within the user's
// scope, with the places and the upcoming planned stops.
func (s *Server) computeMap(r *http.Request) (*report.Map, []report.MapPlace, report.Filter, filterForm, string, error) {
	f, ff, err := s.readFilter(r)
	if err != nil {
		return nil, nil, f, ff, "", err
	}
	radius, typed, err := readRadius(r)
	if err != nil {
		return nil, nil, f, ff, typed, err
	}
	sc, err := scopeOf(&whoOf(r).user)
	if err != nil {
		return nil, nil, f, ff, typed, err
	}
	in := report.MapInput{RadiusKm: radius, Planned: map[string]int{}, Centroid: func(code string) (float64, float64, bool) {
		o, ok := contours.Default().Outline(code)
		return o.Lat, o.Lon, ok
	}}
	if s.cfg.Places != nil {
		ps, err := s.cfg.Places.Places(r.Context())
		if err != nil {
			return nil, nil, f, ff, typed, fmt.Errorf("reading places: %w", err)
		}
		_, in.HasPlaces, err = s.cfg.Places.LastImport(r.Context())
		if err != nil {
			return nil, nil, f, ff, typed, fmt.Errorf("reading places: %w", err)
		}
		in.Places = make([]report.MapPlace, len(ps))
		for i, p := range ps {
			in.Places[i] = report.MapPlace{Commune: p.Commune, Lat: p.Lat, Lon: p.Lon, HasCoords: p.HasCoords}
		}
	}
	today := s.cfg.Now().In(paris)
	stops, err := s.plannedStops(r, today.Format("2006-01-02"), today.AddDate(0, plannedAheadMonths, 0).Format("2006-01-02"), strings.TrimSpace(f.Team), strings.TrimSpace(f.Vehicle))
	if err != nil {
		return nil, nil, f, ff, typed, fmt.Errorf("listing planned stops: %w", err)
	}
	for _, st := range stops {
		if !st.Made && !st.Cancelled {
			in.Planned[st.Commune]++
		}
	}
	m, err := report.ComputeMap(r.Context(), s.cfg.Reports, f, sc, s.options(), in)
	return m, in.Places, f, ff, typed, err
}

func (s *Server) getMap(w http.ResponseWriter, r *http.Request) {
	s.showMap(w, r, http.StatusOK, "")
}

// showMap renders the map page; importProblem is the refusal of an
// import, shown by its form.
func (s *Server) showMap(w http.ResponseWriter, r *http.Request, status int, importProblem string) {
	if !s.reportsReady(w, r) {
		return
	}
	m, ps, f, ff, typed, err := s.computeMap(r)
	u := &whoOf(r).user
	d := mapData{reportPage: s.reportPage(r, ff), Rayon: typed, CanImport: s.cfg.Places != nil && canImportPlaces(u),
		ImportProblem: importProblem, Credit: tr("map_credit")}
	if s.cfg.Places != nil {
		imp, ok, ierr := s.cfg.Places.LastImport(r.Context())
		if ierr != nil {
			s.log.Error("reading the last import of places failed", "err", ierr)
		}
		d.Import, d.HasImport = imp, ok
	}
	p := s.page(r, "title_map", &d)
	if r.URL.Query().Get("import") == "ok" && d.HasImport {
		p.Flash = tr("places_imported", frInt(d.Import.Places), d.Import.File, d.Import.Format.Label())
		if d.Import.Skipped > 0 {
			p.Flash += " " + tr("places_skipped", frInt(d.Import.Skipped))
		}
	}
	if err != nil {
		code, msg := s.mapError(r, err)
		d.Problem = msg
		if importProblem == "" {
			status = code.Status()
		}
		s.render(w, r, status, "map", p)
		return
	}
	s.auditReport(r, f)
	d.withApplied(m.Filter)
	d.M = m
	d.Query = d.Filter.Query()
	if d.Rayon != "" {
		d.Query = withParam(d.Query, "rayon", d.Rayon)
	}
	d.Never = m.JamaisVisitees[:min(len(m.JamaisVisitees), maxNeverListed)]
	d.Legend = append(d.Legend, legendItem{Class: 0, Label: tr("map_class_none")})
	for i, c := range m.Classes {
		label := tr("map_class", frRate(c.Min), frRate(c.Max))
		if i == len(m.Classes)-1 {
			label = tr("map_class_last", frRate(c.Min), frRate(c.Max))
		}
		d.Legend = append(d.Legend, legendItem{Class: i + 1, Label: label})
	}
	for _, c := range m.Communes {
		d.Legend[c.Classe].Count++
	}
	labels := make(map[string]string, len(m.Communes))
	for _, c := range m.Communes {
		labels[c.Code] = communeLabel(c)
	}
	title := tr("map_title", d.Applied.TerritoryName)
	if d.Applied.TerritoryName == "" {
		title = tr("map_title_scope")
	}
	d.SVG = drawMap(mapDrawing{Communes: m.Communes, Labels: labels, Places: ps, Title: title,
		Desc: tr("map_desc", frInt(len(m.Communes)), frInt(m.Visitees))})
	s.render(w, r, status, "map", p)
}

// mapError adds the map's own refusals to reportError's.
func (s *Server) mapError(r *http.Request, err error) (apperr.Code, string) {
	switch {
	case errors.Is(err, report.ErrMapNoTerritory):
		return apperr.Usage, tr("map_no_territory")
	case errors.Is(err, report.ErrMapTooLarge):
		return apperr.Usage, tr("map_too_large", frInt(report.MaxMapCommunes))
	}
	return s.reportError(r, err)
}

// communeLabel is a commune's accessible name on the map: its name, its
// figures, and what the reader should know.
func communeLabel(c report.MapCommune) string {
	var b strings.Builder
	b.WriteString(c.Nom)
	b.WriteString(" : ")
	if c.Visitee {
		b.WriteString(tr("map_label_visited", frInt(c.Accompagnements), frRate(c.Taux), frInt(c.Population)))
	} else {
		b.WriteString(tr("map_label_never", frInt(c.Population)))
	}
	if c.Prevus > 0 {
		b.WriteString(", ")
		b.WriteString(tr("map_label_planned", frInt(c.Prevus)))
	}
	if c.DistanceKm >= 0 {
		b.WriteString(", ")
		b.WriteString(tr("map_label_distance", frKm(c.DistanceKm)))
	}
	return b.String()
}

// frRate writes a rate per 1,000 inhabitants with two decimals at most:
// 1,02 ; 12,5 ; 0.
func frRate(v float64) string {
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return strings.Replace(s, ".", ",", 1)
}

// frKm writes a distance in km with one decimal: 12,4 km.
func frKm(v float64) string { return frDec(v) + "\u202fkm" }

// withParam adds k=v to a query string ("" or "?…").
func withParam(q, k, v string) string {
	sep := "?"
	if q != "" {
		sep = "&"
	}
	return q + sep + url.QueryEscape(k) + "=" + url.QueryEscape(v)
}

func (s *Server) apiMap(w http.ResponseWriter, r *http.Request) {
	if !s.reportsReady(w, r) {
		return
	}
	m, _, f, _, _, err := s.computeMap(r)
	if err != nil {
		code, msg := s.mapError(r, err)
		writeAPIError(w, code, msg)
		return
	}
	s.auditReport(r, f)
	writeJSON(w, http.StatusOK, m)
}

// postPlaces imports a list of places from the uploaded file: parsed
// whole first, then stored in one transaction; a refused file changes
// nothing and the page says why, in French.
func (s *Server) postPlaces(w http.ResponseWriter, r *http.Request) {
	u := &whoOf(r).user
	if s.cfg.Places == nil || !canImportPlaces(u) {
		s.deny(w, r)
		return
	}
	name, parsed, err := s.readPlacesUpload(r)
	if err != nil {
		msg := tr("internal_error")
		status := http.StatusInternalServerError
		var ae *apperr.Error
		switch {
		case errors.As(err, &ae) && ae.Code == apperr.Invalid:
			msg, status = ae.Message, http.StatusUnprocessableEntity
		case errors.As(err, &ae) && ae.Code == apperr.TooLarge:
			msg, status = ae.Message, http.StatusRequestEntityTooLarge
		default:
			s.log.Error("importing places failed", "err", err)
		}
		s.audit(r, actionPlacesRefused, name)
		s.showMap(w, r, status, tr("places_refused", msg))
		return
	}
	imp := places.Import{At: s.cfg.Now(), Email: u.Email, File: name, Format: parsed.Format, Places: len(parsed.Places), Skipped: parsed.Skipped}
	if err := s.cfg.Places.ReplacePlaces(r.Context(), imp, parsed.Places); err != nil {
		s.log.Error("storing places failed", "err", err)
		s.showMap(w, r, http.StatusInternalServerError, tr("places_refused", tr("internal_error")))
		return
	}
	s.audit(r, actionPlacesImported, fmt.Sprintf("%s (%s) : %d lieux, %d lignes ignorées", name, parsed.Format, len(parsed.Places), parsed.Skipped))
	q := r.URL.Query()
	q.Set("import", "ok")
	http.Redirect(w, r, "/carte?"+q.Encode()+"#import", http.StatusSeeOther)
}

// readPlacesUpload reads the "fichier" part of the multipart form as it
// streams in, and parses it.
func (s *Server) readPlacesUpload(r *http.Request) (string, *places.Parsed, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return "", nil, apperr.Errorf(apperr.Invalid, "%s", tr("places_no_file"))
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return "", nil, apperr.Errorf(apperr.Invalid, "%s", tr("places_no_file"))
		}
		if err != nil {
			return "", nil, uploadError(err)
		}
		if part.FormName() != "fichier" {
			part.Close()
			continue
		}
		name := part.FileName()
		if name == "" {
			return "", nil, apperr.Errorf(apperr.Invalid, "%s", tr("places_no_file"))
		}
		parsed, err := places.Parse(part, s.terr)
		if err != nil {
			return name, nil, uploadError(err)
		}
		return name, parsed, nil
	}
}

// uploadError tells an upload over the limit from a read failure.
func uploadError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return apperr.Errorf(apperr.TooLarge, "%s", tr("places_too_large", maxPlacesUpload>>20))
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	if errors.Is(err, multipart.ErrMessageTooLarge) || errors.Is(err, context.Canceled) {
		return apperr.Errorf(apperr.TooLarge, "%s", tr("places_too_large", maxPlacesUpload>>20))
	}
	return fmt.Errorf("reading the uploaded file: %w", err)
}

// mapTexts are the map page's texts, added to fr at start (a file of
// their own, so that the map's work does not touch the shared table).
var mapTexts = map[string]string{
	"nav_map":            "Carte",
	"title_map":          "Carte du territoire",
	"map_title":          "Carte de %s : accompagnements pour 1 000 habitants",
	"map_title_scope":    "Carte de vos territoires : accompagnements pour 1 000 habitants",
	"map_desc":           "%s communes, dont %s visitées sur la période. Chaque commune est un lien vers sa ligne du tableau.",
	"map_intro":          "Chaque commune est teintée selon les accompagnements pour 1 000 habitants sur la période ; les communes jamais visitées restent claires. Les traits épais séparent les EPCI. Tabulation pour parcourir les communes ; le tableau à côté donne les mêmes chiffres.",
	"map_skip_table":     "Aller au tableau des communes",
	"map_legend":         "Légende",
	"map_class_none":     "Non visitée sur la période",
	"map_class":          "De %s à moins de %s pour 1 000 hab.",
	"map_class_last":     "De %s à %s pour 1 000 hab.",
	"map_legend_count":   "%s commune(s)",
	"map_legend_stop":    "Arrêt prévu dans les 6 prochains mois",
	"map_legend_place":   "Lieu fixe de médiation numérique (liste importée)",
	"map_legend_epci":    "Limite d'EPCI",
	"map_credit":         "Contours : IGN Admin Express 2018 simplifié, Licence Ouverte",
	"map_table":          "Communes du territoire",
	"th_rate":            "Pour 1 000 hab.",
	"th_acc_short":       "Accom\u00adpagne\u00adments",
	"th_prevus":          "Arrêts prévus",
	"th_nearest":         "Lieu fixe le plus proche",
	"map_far":            "plus de 100 km",
	"map_no_outline":     "(sans contour)",
	"map_missing":        "%s commune(s) sans contour sur la carte (créées ou rétablies depuis 2018, ou collectivités d'outre-mer) : %s. Elles figurent dans le tableau.",
	"map_never":          "Communes jamais visitées sur la période (%s), par population",
	"map_never_more":     "… et %s autres, dans le tableau.",
	"map_never_none":     "Toutes les communes du territoire ont été visitées sur la période.",
	"map_white":          "Zones blanches : jamais visitées et à plus de %s d'un lieu fixe",
	"map_white_intro":    "Communes où le bus n'est pas passé sur la période et dont le centre est à plus du rayon choisi de tout lieu fixe de médiation numérique, les plus peuplées d'abord : là où le bus devrait aller.",
	"map_white_none":     "Aucune zone blanche : chaque commune non visitée a un lieu fixe dans le rayon.",
	"map_white_noplaces": "Importez la liste nationale des lieux de médiation numérique (ci-dessous) pour voir les zones blanches.",
	"map_radius":         "Rayon (km)",
	"map_radius_submit":  "Recalculer",
	"map_bad_radius":     "Rayon « %s » : indiquez un nombre de kilomètres entre 1 et 100.",
	"map_plan":           "Planifier un arrêt",
	"map_plan_at":        " à %s",
	"map_no_territory":   "La carte montre un territoire : choisissez un département, un EPCI ou une commune dans le filtre (par exemple 54 ou epci:245400676).",
	"map_too_large":      "Ce territoire compte trop de communes pour une carte lisible (plus de %s) : choisissez un département ou un EPCI.",
	"map_label_visited":  "%s accompagnements, %s pour 1 000 habitants (%s hab.)",
	"map_label_never":    "jamais visitée (%s hab.)",
	"map_label_planned":  "%s arrêt(s) prévu(s)",
	"map_label_distance": "lieu fixe à %s",
	"places_title":       "Lieux de médiation numérique",
	"places_intro":       "Importez la liste nationale que vous avez téléchargée : structures data·inclusion (CSV ou JSON) ou lieux de médiation numérique (CSV, standard de La MedNum). Le hub ne télécharge rien lui-même. L'import remplace la liste entière.",
	"places_current":     "Liste en place : %s lieux, fichier « %s » (%s), importé le %s par %s.",
	"places_none":        "Aucune liste importée.",
	"places_file":        "Fichier (CSV ou JSON)",
	"places_submit":      "Importer la liste",
	"places_imported":    "%s lieux importés depuis « %s » (%s).",
	"places_skipped":     "%s ligne(s) sans commune reconnue ignorée(s).",
	"places_refused":     "Import refusé, rien n'a changé : %s",
	"places_no_file":     "Choisissez un fichier à importer.",
	"places_too_large":   "Le fichier dépasse %d Mo.",
}

// mapFuncs are the map page's template functions, added to funcs.
var mapFuncs = map[string]any{
	"rate":  frRate,
	"km":    frKm,
	"minus": func(a, b int) int { return a - b },
	// missingNames lists communes as "Nom (code)".
	"missingNames": func(cs []report.MapCommune) string {
		names := make([]string, len(cs))
		for i, c := range cs {
			names[i] = c.Nom + " (" + c.Code + ")"
		}
		return strings.Join(names, ", ")
	},
}

func init() {
	for k, v := range mapTexts {
		if _, dup := fr[k]; dup {
			panic("dashboard: text " + k + " defined twice")
		}
		fr[k] = v
	}
	for k, v := range mapFuncs {
		if _, dup := funcs[k]; dup {
			panic("dashboard: template function " + k + " defined twice")
		}
		funcs[k] = v
	}
}
