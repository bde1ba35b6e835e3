package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"numeribus/hub/accounts"
	"numeribus/internal/apperr"
	"numeribus/internal/territoire"
)

// runUser manages the dashboard's accounts from the hub's machine (the
// first admin comes from here; admins then manage accounts on the
// dashboard's Utilisateurs page too). Whoever can run this command can
// already read the hub's database; every change is audited as "cli".
func runUser(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		return usagef("user attend une sous-commande : add, list, disable, enable, password, token")
	}
	switch args[0] {
	case "add":
		return runUserAdd(ctx, e, args[1:])
	case "list":
		return runUserList(ctx, e, args[1:])
	case "disable":
		return runUserDisable(ctx, e, args[1:], true)
	case "enable":
		return runUserDisable(ctx, e, args[1:], false)
	case "password":
		return runUserPassword(ctx, e, args[1:])
	case "token":
		return runUserToken(ctx, e, args[1:])
	}
	return usagef("sous-commande inconnue « %s » : add, list, disable, enable, password, token", args[0])
}

// listFlag collects a repeated flag (--territory 54 --territory 88).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runUserAdd(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user add", "--data DOSSIER --email ADRESSE --role admin|coordinator|viewer [--territory CODE…] [--password-file FICHIER]", &data)
	email := fs.String("email", "", "adresse e-mail de l'utilisateur, qui sert à se connecter")
	roleName := fs.String("role", "", "admin (postes, comptes, tout), coordinator (ses territoires), viewer (chiffres agrégés seulement)")
	var terr listFlag
	fs.Var(&terr, "territory", "code de département, d'EPCI (SIREN) ou de commune (INSEE) que l'utilisateur voit ; à répéter ou séparer par des virgules")
	pwFile := fs.String("password-file", "", "lit le mot de passe sur la première ligne de ce fichier (- : l'entrée standard) au lieu de le demander")
	if err := parse(fs, args); err != nil {
		return err
	}
	addr, err := accounts.NormalizeEmail(*email)
	if err != nil {
		return usagef("--email : %v", err)
	}
	role, err := accounts.ParseRole(*roleName)
	if err != nil {
		return usagef("--role : %v", err)
	}
	codes, err := accounts.CheckTerritories(territoire.Default(), role, terr)
	if err != nil {
		return usagef("--territory : %v", err)
	}
	hash, err := newPasswordHash(e, *pwFile)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.CreateUser(ctx, accounts.User{Email: addr, Role: role, Territories: codes, PasswordHash: hash, Created: time.Now()})
	if errors.Is(err, accounts.ErrEmailTaken) {
		return frErr("", err, "un compte existe déjà avec l'adresse %s (« hub user list » liste les comptes)", addr)
	}
	if err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: time.Now(), Email: "cli", Action: accounts.ActionUserCreated,
		What: fmt.Sprintf("%s (%s %s)", u.Email, u.Role, strings.Join(u.Territories, " "))}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Compte %s créé (%s", u.Email, roleLabel(u.Role))
	if len(u.Territories) > 0 {
		fmt.Fprintf(e.Stdout, ", territoires %s", strings.Join(u.Territories, ", "))
	}
	fmt.Fprintln(e.Stdout, ") ; il se connecte au tableau de bord à l'adresse du hub.")
	return nil
}

// roleLabel names a role in French.
func roleLabel(r accounts.Role) string {
	switch r {
	case accounts.RoleAdmin:
		return "administrateur"
	case accounts.RoleCoordinator:
		return "coordinateur"
	case accounts.RoleViewer:
		return "lecteur"
	}
	return string(r)
}

// newPasswordHash reads a new password (readPassword), checks its
// strength and returns its Argon2id hash.
func newPasswordHash(e *Env, file string) (string, error) {
	pw, err := readPassword(e, file)
	if err != nil {
		return "", err
	}
	defer clear(pw)
	if err := accounts.CheckPasswordStrength(pw); err != nil {
		return "", usagef("%v", err)
	}
	return accounts.HashPassword(pw, accounts.DefaultParams)
}

// readPassword reads the new password from a file, standard input, or
// a no-echo prompt typed twice.
func readPassword(e *Env, file string) ([]byte, error) {
	switch {
	case file == "-":
		return firstLine(os.Stdin)
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("reading the password: %w", err) // a path error, said in French by message
		}
		defer f.Close()
		return firstLine(f)
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, usagef("aucun terminal pour demander le mot de passe : donnez --password-file FICHIER (ou - pour l'entrée standard)")
	}
	fmt.Fprintf(e.Stderr, "Mot de passe (au moins %d caractères) : ", accounts.MinPasswordLen)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return nil, frErr(apperr.Internal, err, "le mot de passe n'a pas pu être lu sur le terminal")
	}
	fmt.Fprint(e.Stderr, "Le même mot de passe, une seconde fois : ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return nil, frErr(apperr.Internal, err, "le mot de passe n'a pas pu être lu sur le terminal")
	}
	defer clear(again)
	if string(pw) != string(again) {
		clear(pw)
		return nil, usagef("les deux mots de passe diffèrent : rien n'a été changé")
	}
	return pw, nil
}

func firstLine(f *os.File) ([]byte, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, frErr(apperr.Internal, err, "le fichier du mot de passe n'a pas pu être lu")
		}
		return nil, usagef("le fichier du mot de passe est vide")
	}
	return []byte(strings.TrimRight(sc.Text(), "\r")), nil
}

func runUserList(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user list", "--data DOSSIER [--json]", &data)
	asJSON := fs.Bool("json", false, "sortie JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	us, err := st.Users(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		type out struct {
			Email       string   `json:"email"`
			Role        string   `json:"role"`
			Territories []string `json:"territories"`
			Created     string   `json:"created"`
			Disabled    string   `json:"disabled,omitempty"`
		}
		list := []out{}
		for _, u := range us {
			list = append(list, out{u.Email, string(u.Role), append([]string{}, u.Territories...), ts(u.Created), ts(u.Disabled)})
		}
		return json.NewEncoder(e.Stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADRESSE\tRÔLE\tTERRITOIRES\tCRÉÉ LE\tÉTAT")
	for _, u := range us {
		state := "actif"
		if !u.Active() {
			state = "désactivé le " + frTime(u.Disabled)
		}
		terr := strings.Join(u.Territories, ",")
		if terr == "" {
			terr = "tous"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, roleLabel(u.Role), terr, frTime(u.Created), state)
	}
	return tw.Flush()
}

// runUserDisable disables a user (their sessions end) or, with disable
// false, enables them again.
func runUserDisable(ctx context.Context, e *Env, args []string, disable bool) error {
	var data string
	name := "user enable"
	if disable {
		name = "user disable"
	}
	fs := newFlags(e, name, "--data DOSSIER --email ADRESSE", &data)
	email := fs.String("email", "", "adresse e-mail de l'utilisateur")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := findUser(ctx, st, *email)
	if err != nil {
		return err
	}
	now := time.Now()
	at, action, done := now, accounts.ActionUserDisabled, "désactivé ; ses sessions sont fermées"
	if !disable {
		at, action, done = time.Time{}, accounts.ActionUserEnabled, "réactivé ; il peut se connecter de nouveau"
	}
	if err := st.SetUserDisabled(ctx, u.ID, at); err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: now, Email: "cli", Action: action, What: u.Email}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "Compte %s %s.\n", u.Email, done)
	return nil
}

// findUser reads the user of an e-mail, with a French refusal when there
// is none.
func findUser(ctx context.Context, st hubStore, email string) (accounts.User, error) {
	u, err := st.UserByEmail(ctx, email)
	if errors.Is(err, accounts.ErrNoUser) {
		return u, frErr("", err, "aucun compte avec l'adresse « %s » (« hub user list » liste les comptes)", email)
	}
	return u, err
}

// runUserPassword sets a new password for a user (a reset: their
// sessions end), typed twice, from a file, or drawn at random and shown
// once with --generate.
func runUserPassword(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user password", "--data DOSSIER --email ADRESSE [--password-file FICHIER | --generate]", &data)
	email := fs.String("email", "", "adresse e-mail de l'utilisateur")
	pwFile := fs.String("password-file", "", "lit le nouveau mot de passe sur la première ligne de ce fichier (- : l'entrée standard)")
	generate := fs.Bool("generate", false, "tire un mot de passe au hasard et l'affiche une seule fois")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *generate && *pwFile != "" {
		return usagef("--generate et --password-file s'excluent : choisissez l'un des deux")
	}
	var (
		hash, shown string
		err         error
	)
	if *generate {
		shown, err = accounts.GeneratePassword()
		if err == nil {
			hash, err = accounts.HashPassword([]byte(shown), accounts.DefaultParams)
		}
	} else {
		hash, err = newPasswordHash(e, *pwFile)
	}
	if err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := findUser(ctx, st, *email)
	if err != nil {
		return err
	}
	if err := st.SetUserPassword(ctx, u.ID, hash); err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: time.Now(), Email: "cli", Action: accounts.ActionPasswordReset, What: u.Email}); err != nil {
		return err
	}
	if shown != "" {
		fmt.Fprintf(e.Stdout, "%s\n", shown)
		fmt.Fprintf(e.Stderr, "Nouveau mot de passe de %s ci-dessus, affiché une seule fois ; ses sessions sont fermées.\n", u.Email)
		return nil
	}
	fmt.Fprintf(e.Stdout, "Mot de passe de %s changé ; ses sessions sont fermées.\n", u.Email)
	return nil
}

// runUserToken prints a bearer token for the dashboard's read-only JSON
// API, with the rights of the user it belongs to.
func runUserToken(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user token", "--data DOSSIER --email ADRESSE --name NOM [--expires 2160h]", &data)
	email := fs.String("email", "", "l'utilisateur dont le jeton porte les droits")
	name := fs.String("name", "", "à quoi sert le jeton")
	expires := fs.Duration("expires", 90*24*time.Hour, "validité (0 : illimitée)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usagef("--name est obligatoire")
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := findUser(ctx, st, *email)
	if err != nil {
		return err
	}
	tok, err := accounts.NewToken()
	if err != nil {
		return err
	}
	now := time.Now()
	t := accounts.APIToken{Hash: accounts.HashToken(tok), UserID: u.ID, Name: *name, Created: now}
	if *expires > 0 {
		t.Expires = now.Add(*expires)
	}
	if err := st.CreateAPIToken(ctx, t); err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: now, Email: "cli", Action: accounts.ActionAPITokenMade, What: u.Email + ": " + *name}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "%s\n", tok)
	fmt.Fprintf(e.Stderr, "Jeton d'API de %s (%s), affiché une seule fois. Usage : Authorization: Bearer JETON sur /api/…\n", u.Email, *name)
	return nil
}
