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

// frWithdraw: the withdrawal's confirmation page.
var frWithdraw = map[string]string{
	"title_withdraw":             "Retirer un consentement",
	"withdraw_ask":               "Retirer le consentement…",
	"withdraw_intro":             "Consentement donné le %s — %s.",
	"withdraw_finalites":         "La personne retire son accord pour :",
	"withdraw_will_erase":        "Seront effacés définitivement",
	"withdraw_identity_fields":   "Ses données identifiantes :",
	"withdraw_activity_notes":    "Les notes de ses accompagnements (%d).",
	"withdraw_assessments":       "Ses diagnostics (%d) : leur commentaire et leur lien avec la personne.",
	"withdraw_nothing":           "Rien ne sera effacé : un autre consentement de la personne couvre encore ces finalités, ou rien n'est enregistré à ce titre.",
	"withdraw_stays":             "Restent, anonymes, pour les statistiques",
	"withdraw_stays_fields":      "ses informations statistiques (commune, genre, tranche d'âge, statut…), sans son nom ;",
	"withdraw_stays_activities":  "ses accompagnements (%d) : date, durée, thématiques, sans notes ;",
	"withdraw_stays_assessments": "les niveaux de ses diagnostics, sans lien avec la personne.",
	"withdraw_everywhere":        "L'effacement vaut sur ce poste et, à la prochaine synchronisation, au hub et sur les autres postes de l'équipe.",
	"withdraw_irreversible":      "Cette action est définitive : les données effacées ne pourront pas être récupérées.",
	"withdraw_confirm":           "Confirmer le retrait et effacer",
	"withdraw_cancel":            "Annuler, ne rien effacer",
	"withdraw_already":           "Ce retrait est déjà fait : il n'y a plus rien à retirer ni à effacer.",
	"withdraw_already_done":      "Ce retrait avait déjà été fait : rien de plus n'a été retiré ni effacé.",
	"withdraw_bad_finalite":      "Finalité inconnue, ou déjà retirée, pour ce consentement : rien n'a été retiré ni effacé.",
	"withdraw_unconfirmed":       "Le retrait n'a pas été confirmé : rien n'a été effacé. Lisez ce qui sera effacé, puis confirmez.",
	"withdraw_no_identity":       "(aucune donnée identifiante enregistrée)",
	"withdraw_assessments_none":  "Ses diagnostics : aucun n'est enregistré.",
	"withdraw_back":              "Retour à la fiche de la personne",
	"withdraw_person":            "Personne : %s",
}

// frNotice: the printable information notice and the links to it.
var frNotice = map[string]string{
	"notice_link":              "Notice d'information à imprimer",
	"new_tab":                  "(nouvel onglet)",
	"access_link":              "Tout ce que nous détenons sur la personne",
	"title_notice":             "Notice d'information : vos données personnelles",
	"notice_print":             "Imprimer la notice",
	"notice_not_configured":    "Le nom de la structure ou le contact ne sont pas renseignés sur ce poste : les lignes vides sont à remplir à la main avant de remettre la notice (options --notice-structure et --notice-contact de « agent serve »).",
	"notice_intro":             "Un médiateur ou une médiatrice numérique vous a aidé. Cette notice explique ce qui est enregistré sur vous, pourquoi, combien de temps, et vos droits.",
	"notice_who":               "Qui est responsable de vos données ?",
	"notice_what":              "Qu'est-ce qui est enregistré ?",
	"notice_what_always":       "Toujours, sans votre nom : des informations anonymes pour les statistiques (votre commune, genre, tranche d'âge, statut, et ce que nous avons fait ensemble : date, durée, thèmes).",
	"notice_what_consent":      "Seulement si vous l'acceptez : %s ; et un diagnostic de vos compétences numériques.",
	"notice_why":               "Pourquoi ?",
	"notice_why_intro":         "Pour ce que vous avez accepté, et rien d'autre :",
	"notice_basis":             "Ces enregistrements reposent sur votre consentement. Vous pouvez refuser : l'aide que vous recevez reste la même.",
	"notice_who_sees":          "Qui les voit ?",
	"notice_who_sees_text":     "Les médiateurs de l'équipe qui vous accompagne. Les coordinateurs de l'équipe seulement si vous avez accepté le partage ; une structure partenaire seulement si vous avez accepté d'y être orienté. Les financeurs ne voient que des chiffres anonymes. Vos données sont chiffrées sur l'ordinateur du médiateur et sur le serveur de l'équipe ; elles ne sont ni vendues ni transmises à d'autres.",
	"notice_how_long":          "Combien de temps ?",
	"notice_rights":            "Vos droits",
	"notice_rights_text":       "Vous pouvez à tout moment : consulter vos données (accès), les faire corriger (rectification), les faire effacer (effacement), retirer votre consentement, pour tout ou une partie, sans avoir à vous justifier : ce qu'il couvrait est alors effacé. Il suffit de le demander au médiateur ou au contact ci-dessous.",
	"notice_cnil":              "Si vous pensez que vos droits ne sont pas respectés, vous pouvez vous adresser à la CNIL (www.cnil.fr, 3 place de Fontenoy, 75007 Paris).",
	"notice_contact":           "Qui contacter ?",
	"notice_structure_label":   "Structure responsable :",
	"notice_contact_label":     "Contact (ou délégué à la protection des données) :",
	"notice_version":           "Texte d'information version %s.",
	"notice_retention_policy":  "Votre nom et vos coordonnées sont gardés %s après votre dernier contact avec nous, vos diagnostics %s, puis effacés ; seules les informations anonymes restent, pour les statistiques. Si vous retirez votre consentement, ils sont effacés tout de suite.",
	"notice_retention_default": "Votre nom, vos coordonnées et vos diagnostics sont gardés 2 ans après votre dernier accompagnement, puis effacés ; seules les informations anonymes restent, pour les statistiques. Si vous retirez votre consentement, ils sont effacés tout de suite.",
}

// frDemarche: the démarche form says its theme instead of pre-ticking it.
var frDemarche = map[string]string{
	"demarche_theme":      "Thématique : Aide aux démarches administratives (toujours comptée pour une démarche).",
	"f.thematiques_other": "Autres thématiques abordées (facultatif)",
}

func init() {
	for _, m := range []map[string]string{frConsent, frWithdraw, frNotice, frDemarche} {
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
