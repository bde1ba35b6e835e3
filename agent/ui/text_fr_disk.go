package ui

import "maps"

// Texts of the low-disk refusal and banner (disk.go), and of the page
// shown in place of the UI when the store is damaged (damaged.go).
var frDisk = map[string]string{
	"disk_refused":         "Espace disque insuffisant : il reste %s sur cet ordinateur. Rien n'a été enregistré. Libérez de la place (corbeille, téléchargements), puis enregistrez de nouveau : ce que vous avez saisi est toujours là.",
	"disk_banner_low":      "Espace disque faible : il reste %s sur cet ordinateur. Libérez de la place : en dessous de %s, plus aucun enregistrement ne sera possible.",
	"disk_banner_refusing": "Disque presque plein : il reste %s. Les enregistrements sont refusés tant que de la place n'a pas été libérée (corbeille, téléchargements).",
	"disk_api":             "Espace disque insuffisant : rien n'a été enregistré.",

	"damaged_title":     "Le magasin de données est endommagé",
	"damaged_intro":     "L'agent a vérifié ses données au démarrage : le fichier du magasin est abîmé (disque, coupure de courant). Pour ne rien aggraver, il ne s'en sert pas.",
	"damaged_detail":    "Détail technique",
	"damaged_backup":    "La dernière sauvegarde saine date du %s (%s).",
	"damaged_restore":   "Restaurer cette sauvegarde",
	"damaged_after":     "Le magasin endommagé sera gardé de côté, et le travail envoyé au hub depuis cette sauvegarde reviendra à la synchronisation suivante. Les saisies faites depuis et jamais envoyées ne reviendront pas.",
	"damaged_terminal":  "Ou, l'agent arrêté, dans un terminal :",
	"damaged_no_backup": "Aucune sauvegarde saine n'existe dans %s. Mettez le dossier %s de côté, créez un magasin neuf (agent init) et inscrivez-le de nouveau auprès du hub avec un nouveau code (agent enroll) : le travail déjà synchronisé reviendra du hub.",
	"damaged_restored":  "Sauvegarde restaurée. L'agent redémarre avec elle : rechargez la page dans quelques secondes.",
	"damaged_failed":    "La restauration n'a pas abouti : %s",
	"damaged_help":      "Si le problème revient, le disque de l'ordinateur est peut-être en train de lâcher : parlez-en à votre coordinateur.",
}

func init() { maps.Copy(fr, frDisk) }
