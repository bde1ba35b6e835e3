package ui

import "maps"

// Texts of the drafts kept at a lock (draft.go).
var frDrafts = map[string]string{
	"title_drafts":              "Saisies gardées au verrouillage",
	"drafts_intro":              "L'agent s'est verrouillé pendant ces saisies. Elles ont été gardées, chiffrées : reprenez-les, ou abandonnez-les.",
	"drafts_none":               "Aucune saisie en attente.",
	"draft_resume":              "Reprendre",
	"draft_abandon":             "Abandonner",
	"draft_kept":                "Votre saisie a été gardée : déverrouillez l'agent pour la reprendre.",
	"draft_resumed":             "Saisie reprise après le verrouillage : vérifiez-la, puis enregistrez.",
	"draft_abandoned":           "Saisie abandonnée.",
	"draft_activity_individuel": "Accompagnement individuel",
	"draft_activity_demarche":   "Aide à une démarche",
	"draft_activity_collectif":  "Atelier collectif",
	"draft_beneficiary":         "Nouvelle personne",
	"draft_assessment":          "Diagnostic",
	"draft_consent":             "Consentement",
	"draft_started":             "commencée le %s",
	// Workshops a followed person attended (workshop.go).
	"workshops_today":   "Ateliers du jour",
	"workshops_none":    "Aucun atelier enregistré aujourd'hui.",
	"workshop_attended": "présent(e)",
	"workshop_add":      "Présent(e) à cet atelier",
	"workshop_added":    "Personne ajoutée aux participants de l'atelier.",
	"workshop_already":  "Cette personne figure déjà parmi les participants.",
	"workshop_refused":  "L'ajout n'a pas été enregistré : %s",
	// The stop an activity is tied to (activity.go).
	"activity_at_stop":     "Arrêt de tournée : %s.",
	"activity_not_at_stop": "Ne pas rattacher cette activité à cet arrêt",
}

func init() { maps.Copy(fr, frDrafts) }
