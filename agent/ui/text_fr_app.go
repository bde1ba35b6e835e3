package ui

import "maps"

// Texts of `agent app`: the first-start page (setup.go) and « Quitter »
// (quit.go).
var frApp = map[string]string{
	"title_setup":         "Premier démarrage : choisir la phrase de passe",
	"setup_intro":         "Les données de ce poste seront chiffrées. Choisissez la phrase de passe qui les protège : elle sera demandée à chaque démarrage et après chaque verrouillage.",
	"setup_advice":        "Prenez plusieurs mots faciles à retenir pour vous et difficiles à deviner pour les autres. Ne la notez pas sur l'ordinateur.",
	"f.passphrase":        "Nouvelle phrase de passe",
	"f.confirm":           "Confirmez la phrase de passe",
	"hint_new_passphrase": "Au moins %d caractères.",
	"setup_create":        "Créer le coffre chiffré",
	"setup_empty":         "Aucune phrase de passe saisie : tapez-en une.",
	"setup_short":         "Phrase de passe trop courte : au moins %d caractères.",
	"setup_differ":        "Les deux saisies diffèrent : tapez deux fois la même phrase de passe.",
	"setup_failed":        "Le coffre chiffré n'a pas pu être créé (voir le journal). Réessayez ; si cela recommence, prévenez votre coordinateur.",
	"title_setup_code":    "Coffre chiffré créé",
	"setup_done":          "Les données de ce poste sont maintenant chiffrées avec votre phrase de passe.",
	"setup_code_title":    "Code de secours",
	"setup_code_advice":   "Notez ce code sur papier et rangez-le à part, hors du véhicule si possible : il ne sera plus jamais affiché.",
	"setup_code_use":      "Il remplace la phrase de passe oubliée : sans l'un ni l'autre, les données de ce poste sont perdues.",
	"setup_continue":      "J'ai noté le code : continuer",
	"quit":                "Quitter",
	"quit_hint":           "arrête Numéribus Sync sur ce poste ; les données restent chiffrées.",
	"title_stopped":       "Numéribus Sync est arrêté",
	"stopped_text":        "Le programme est arrêté et les données sont verrouillées. Vous pouvez fermer cet onglet.",
	"stopped_again":       "Pour reprendre, relancez Numéribus Sync depuis son icône.",
}

func init() { maps.Copy(fr, frApp) }
