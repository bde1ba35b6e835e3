package domain

import (
	"numeribus/internal/ident"
)

// TourStop is a planned stop of a vehicle in a commune: where activities
// are usually recorded. Stops are planned on the agent or at the hub.
type TourStop struct {
	ID         ident.ID `json:"id" cbor:"1,keyasint"`
	Vehicule   string   `json:"vehicule" cbor:"2,keyasint,omitempty"`
	Date       string   `json:"date" cbor:"3,keyasint,omitempty"`
	HeureDebut string   `json:"heure_debut,omitempty" cbor:"4,keyasint,omitempty"`
	HeureFin   string   `json:"heure_fin,omitempty" cbor:"5,keyasint,omitempty"`
	Lieu       string   `json:"lieu" cbor:"6,keyasint,omitempty"`
	Commune    string   `json:"commune" cbor:"7,keyasint,omitempty"`
	Equipe     string   `json:"equipe,omitempty" cbor:"8,keyasint,omitempty"`
	Realise    bool     `json:"realise,omitempty" cbor:"9,keyasint,omitempty"`
}

func (*TourStop) Kind() Kind                { return KindTourStop }
func (s *TourStop) RecordID() ident.ID      { return s.ID }
func (s *TourStop) SetRecordID(id ident.ID) { s.ID = id }
func (s *TourStop) Normalize() {
	trim(&s.Vehicule, &s.HeureDebut, &s.HeureFin, &s.Lieu, &s.Commune, &s.Equipe)
	normDate(&s.Date)
}

// Validate checks the stop.
func (s *TourStop) Validate(env Env) error {
	var c checker
	c.sizes(s)
	c.required("vehicule", s.Vehicule)
	c.date("date", s.Date, true)
	c.required("lieu", s.Lieu)
	if c.required("commune", s.Commune) {
		c.commune(env, "commune", s.Commune)
	}
	for _, h := range []struct{ f, v string }{{"heure_debut", s.HeureDebut}, {"heure_fin", s.HeureFin}} {
		if h.v != "" && !isHHMM(h.v) {
			c.invalid(h.f, h.v, "heure invalide, attendue au format HH:MM")
		}
	}
	if isHHMM(s.HeureDebut) && isHHMM(s.HeureFin) && s.HeureFin <= s.HeureDebut {
		c.invalid("heure_fin", s.HeureFin, "l'heure de fin doit suivre l'heure de début")
	}
	return c.err(KindTourStop, s.ID)
}
