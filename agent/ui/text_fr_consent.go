package ui

import "maps"

// The texts of the consent, withdrawal and notice flows (and of the
// démarche theme). They live apart from text_fr.go so that these flows
// can change without touching the big map; init merges them into fr, and
// a key defined in both is a mistake the tests catch
// (TestConsentTextsDoNotOverride).

// frConsent: the consent forms, with the text read to the person (its
// wording is ConsentTextVersion: change one word, change the version and
// the hash in TestConsentTextIsVersioned), then the boxes.
var frConsent = map[string]string{
	"consent_howto":                           "Lisez ce texte à la personne, puis cochez seulement ce qu'elle accepte : rien n'est coché d'avance.",
	"consent_text_title":                      "Texte à lire à la personne",
	"consent_text_version":                    "Version du texte : %s",
	"consent_text_intro":                      "Pour vous aider, je n'ai pas besoin de savoir qui vous êtes. Sans votre accord, je note seulement des informations anonymes pour les statistiques : votre commune, votre tranche d'âge, ce que nous avons fait ensemble.",
	"consent_text_offer":                      "Si vous êtes d'accord, et seulement pour ce que vous acceptez, je peux aussi :",
	"consent_text_fin.suivi_nominatif":        "garder votre nom et vos coordonnées, pour vous retrouver la prochaine fois et suivre vos démarches ;",
	"consent_text_fin.diagnostic":             "noter un diagnostic de vos compétences numériques, pour voir vos progrès ;",
	"consent_text_fin.partage_reseau":         "montrer ces informations aux coordinateurs de notre équipe ;",
	"consent_text_fin.orientation_partenaire": "donner vos coordonnées à la structure partenaire vers qui je vous oriente.",
	"consent_text_free":                       "Vous pouvez tout accepter, accepter une partie ou rien : cela ne change rien à l'aide que vous recevez. Vos données sont chiffrées, ne sont pas vendues et ne servent à rien d'autre.",
	"consent_text_rights":                     "Vous pouvez changer d'avis à tout moment : dites-le nous et vos données seront effacées. Vous pouvez aussi les consulter ou les faire corriger. La notice d'information que je vous remets dit combien de temps elles sont gardées et qui contacter.",
	"consent_text_read":                       "texte lu : version %s",
}

// frDemarche: the démarche form says its theme instead of pre-ticking it.
var frDemarche = map[string]string{
	"demarche_theme":      "Thématique : Aide aux démarches administratives (toujours comptée pour une démarche).",
	"f.thematiques_other": "Autres thématiques abordées (facultatif)",
}

func init() {
	for _, m := range []map[string]string{frConsent, frDemarche} {
		for k := range m {
			if _, dup := fr[k]; dup {
				frConsentOverrides = append(frConsentOverrides, k)
			}
		}
		maps.Copy(fr, m)
	}
}

// frConsentOverrides lists the keys of this file that text_fr.go defines
// too: none, or one of the two texts is silently lost.
var frConsentOverrides []string
