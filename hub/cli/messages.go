package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"strings"
	"syscall"

	"numeribus/hub/accounts"
	"numeribus/hub/plan"
	"numeribus/hub/store"
	"numeribus/internal/apperr"
	"numeribus/internal/domain"
	"numeribus/internal/sqlitex"
)

// The hub's command line speaks French, as the agent's does: every line
// it prints for a person — results, usage, errors — is French, and one
// message never mixes two languages. The lower layers (stores, sync,
// operating system) say their errors in English, for the logs; this file
// turns those a person can act on into French, and an unexpected one
// into a French sentence on stderr with its English detail in the log
// (the structured log lines, `level=… msg=…`, stay English and stable for
// whoever greps them, like the agent's).

// frError is an error whose message is already French and shown as is;
// err is its cause, for errors.Is and the exit code, never shown.
type frError struct {
	code apperr.Code
	msg  string
	err  error
}

func (e *frError) Error() string { return e.msg }
func (e *frError) Unwrap() error { return e.err }

// ErrorCode is code, or the cause's when code is empty.
func (e *frError) ErrorCode() apperr.Code {
	if e.code != "" {
		return e.code
	}
	return apperr.CodeOf(e.err)
}

// frErr returns a French error of code with a formatted message; a cause
// given with %w is kept for errors.Is but its English text is left out of
// the message (write its French meaning in format, or use fr).
func frErr(code apperr.Code, cause error, format string, args ...any) error {
	return &frError{code: code, msg: fmt.Sprintf(format, args...), err: cause}
}

// usagef is an error in the command line (apperr.Usage: exit 2); the
// message is French.
func usagef(format string, a ...any) error {
	return &frError{code: apperr.Usage, msg: fmt.Sprintf(format, a...)}
}

// message says err in French, for the line `hub : …` on stderr. ok is
// false when err is none the user can act on: then the message is a
// generic French one and the caller logs the detail.
func message(err error) (msg string, ok bool) {
	var fe *frError
	var ve *domain.ValidationError
	var pe *fs.PathError
	var oe *net.OpError
	switch {
	case errors.As(err, &fe):
		return fe.msg, true
	case errors.As(err, &ve):
		return validationMessage(err), true
	case errors.Is(err, store.ErrNoDevice):
		return "poste inconnu (« hub devices » liste les postes inscrits)", true
	case errors.Is(err, store.ErrNameTaken):
		return "ce nom de poste est déjà inscrit : choisissez-en un autre", true
	case errors.Is(err, accounts.ErrNoUser):
		return "utilisateur inconnu (« hub user list » liste les comptes)", true
	case errors.Is(err, accounts.ErrEmailTaken):
		return "un compte existe déjà avec cette adresse (« hub user list » liste les comptes)", true
	case errors.Is(err, plan.ErrUnknownTeam):
		return "équipe inconnue : aucun poste ni code d'inscription de cette équipe au hub (« hub enroll --team » l'inscrit)", true
	case errors.Is(err, plan.ErrNotFound):
		return "arrêt introuvable (dans cette équipe) : « hub plan list » donne les identifiants", true
	case errors.Is(err, plan.ErrCancelled):
		return "cet arrêt est annulé, ce qui est définitif : planifiez-en un nouveau", true
	case errors.Is(err, sqlitex.ErrTooNew):
		return "cette base a été écrite par une version plus récente du hub : installez-la", true
	case errors.Is(err, syscall.EADDRINUSE):
		return "cette adresse est déjà utilisée par un autre programme : choisissez un autre --listen", true
	case errors.As(err, &oe) && errors.Is(err, syscall.EACCES):
		return "écoute refusée sur cette adresse (un port sous 1024 demande des droits d'administration)", true
	case errors.As(err, &oe) && oe.Op == "listen":
		return "impossible d'écouter sur " + oe.Addr.String(), true
	case errors.As(err, &pe) && errors.Is(err, fs.ErrPermission):
		return "accès refusé à " + pe.Path, true
	case errors.As(err, &pe) && errors.Is(err, fs.ErrNotExist):
		return "fichier ou dossier introuvable : " + pe.Path, true
	case errors.Is(err, syscall.ENOSPC):
		return "disque plein : libérez de la place, rien n'a été perdu de ce qui était déjà enregistré", true
	case errors.Is(err, store.ErrBadToken), errors.Is(err, store.ErrTokenUsed), errors.Is(err, store.ErrTokenExpired):
		return "code d'inscription refusé : inconnu, déjà utilisé ou expiré", true
	case errors.Is(err, store.ErrGap):
		return "modifications hors d'ordre : il manque au hub des modifications d'avant celles-ci", true
	case errors.Is(err, store.ErrForeign):
		return "modification d'un enregistrement d'une autre équipe : refusée", true
	}
	// Other packages give their users' messages, in French, in an
	// apperr.Error with a code (hub/transfer, internal/bundle).
	var ae *apperr.Error
	if errors.As(err, &ae) && ae.Code != apperr.Internal && ae.Message != "" {
		return ae.Message, true
	}
	if apperr.CodeOf(err) == apperr.Unreachable {
		return "base de données injoignable : réessayez plus tard", true
	}
	return "échec inattendu : le détail est dans le journal ci-dessus ; si cela recommence, signalez-le", false
}

// validationMessage lists the problems of the refused records of err
// (one or several joined *domain.ValidationError), with their French
// messages.
func validationMessage(err error) string {
	var parts []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var ve *domain.ValidationError
		if !errors.As(e, &ve) {
			return
		}
		for _, p := range ve.Problems {
			parts = append(parts, fieldLabel(p.Field)+" : "+p.Message)
		}
	}
	walk(err)
	return "refusé, rien n'a été enregistré : " + strings.Join(parts, " ; ")
}

// fieldLabel names a field of a tour stop (the records the hub writes)
// by its option.
func fieldLabel(f string) string {
	switch f {
	case "vehicule":
		return "--vehicle"
	case "date":
		return "--date"
	case "heure_debut":
		return "--start"
	case "heure_fin":
		return "--end"
	case "lieu":
		return "--place"
	case "commune":
		return "--commune"
	case "equipe":
		return "--team"
	}
	return f
}

// report prints err on one line in French and returns its exit code from
// apperr's table; an unexpected error's detail goes to the log first.
func report(w io.Writer, log *slog.Logger, err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	msg, ok := message(err)
	var fe *frError
	if !ok || (errors.As(err, &fe) && fe.err != nil && apperr.CodeOf(err) == apperr.Internal) {
		log.Error("command failed", "err", err)
	}
	fmt.Fprintf(w, "hub : %s\n", msg)
	return apperr.ExitCode(err)
}

// printOptions lists a command's options, two dashes each, with French
// value names and defaults.
func printOptions(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + frenchValueName(name)
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, help)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(w, " (par défaut : %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

func frenchValueName(n string) string {
	switch n {
	case "string", "value":
		return "TEXTE"
	case "int", "uint", "int64", "uint64", "float":
		return "NOMBRE"
	case "duration":
		return "DURÉE"
	}
	return strings.ToUpper(n)
}

// frenchFlagError says an error of the flag package in French.
func frenchFlagError(err error) string {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "flag provided but not defined: "):
		return "option inconnue : -" + strings.TrimPrefix(msg, "flag provided but not defined: ")
	case strings.HasPrefix(msg, "flag needs an argument: "):
		return "l'option -" + strings.TrimPrefix(msg, "flag needs an argument: ") + " attend une valeur"
	case strings.HasPrefix(msg, "invalid value "), strings.HasPrefix(msg, "invalid boolean value "):
		var value, name string
		if _, err := fmt.Sscanf(msg[strings.Index(msg, "value ")+len("value "):], "%q for flag %s", &value, &name); err == nil {
			return fmt.Sprintf("valeur invalide « %s » pour l'option -%s", value, strings.TrimSuffix(name, ":"))
		}
	}
	return "option invalide"
}
