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
	"numeribus/internal/territoire"
)

// runUser manages the dashboard's accounts. Accounts are made here, on
// the hub's machine, not from the web: whoever can run this command can
// already read the hub's database.
func runUser(ctx context.Context, e *Env, args []string) error {
	if len(args) == 0 {
		return usagef("user needs a subcommand: add, list, disable, token")
	}
	switch args[0] {
	case "add":
		return runUserAdd(ctx, e, args[1:])
	case "list":
		return runUserList(ctx, e, args[1:])
	case "disable":
		return runUserDisable(ctx, e, args[1:])
	case "token":
		return runUserToken(ctx, e, args[1:])
	}
	return usagef("unknown user subcommand %q: add, list, disable, token", args[0])
}

// listFlag collects a repeated flag (--territory 54 --territory 88).
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runUserAdd(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user add", "--data DIR --email E --role admin|coordinator|viewer [--territory CODE…] [--password-file F]", &data)
	email := fs.String("email", "", "the user's e-mail, used to log in")
	roleName := fs.String("role", "", "admin (devices, users, everything), coordinator (their territories), viewer (aggregates only)")
	var terr listFlag
	fs.Var(&terr, "territory", "a département, EPCI (SIREN) or commune (INSEE) code the user may see; repeat or separate with commas")
	pwFile := fs.String("password-file", "", "read the password from the first line of this file (- for standard input) instead of asking")
	if err := parse(fs, args); err != nil {
		return err
	}
	addr, err := accounts.NormalizeEmail(*email)
	if err != nil {
		return usagef("--email: %v", err)
	}
	role, err := accounts.ParseRole(*roleName)
	if err != nil {
		return usagef("--role: %v", err)
	}
	codes, err := accounts.CheckTerritories(territoire.Default(), role, terr)
	if err != nil {
		return usagef("%v", err)
	}
	pw, err := readPassword(e, *pwFile)
	if err != nil {
		return err
	}
	defer clear(pw)
	if err := accounts.CheckPasswordStrength(pw); err != nil {
		return usagef("%v", err)
	}
	hash, err := accounts.HashPassword(pw, accounts.DefaultParams)
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
		return fmt.Errorf("%w (hub user list shows the accounts)", err)
	}
	if err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: time.Now(), Email: "cli", Action: accounts.ActionUserCreated,
		What: fmt.Sprintf("%s (%s %s)", u.Email, u.Role, strings.Join(u.Territories, " "))}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "User %s created (%s", u.Email, u.Role)
	if len(u.Territories) > 0 {
		fmt.Fprintf(e.Stdout, ", territories %s", strings.Join(u.Territories, ", "))
	}
	fmt.Fprintln(e.Stdout, "); they log in on the dashboard at the hub's address.")
	return nil
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
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		defer f.Close()
		return firstLine(f)
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, usagef("no terminal to ask the password on: give --password-file FILE (or - for standard input)")
	}
	fmt.Fprintf(e.Stderr, "Password (at least %d characters): ", accounts.MinPasswordLen)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the password: %w", err)
	}
	fmt.Fprint(e.Stderr, "Same password again: ")
	again, err := term.ReadPassword(fd)
	fmt.Fprintln(e.Stderr)
	if err != nil {
		return nil, fmt.Errorf("reading the password: %w", err)
	}
	defer clear(again)
	if string(pw) != string(again) {
		clear(pw)
		return nil, usagef("the two passwords differ")
	}
	return pw, nil
}

func firstLine(f *os.File) ([]byte, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("reading the password: %w", err)
		}
		return nil, usagef("the password file is empty")
	}
	return []byte(strings.TrimRight(sc.Text(), "\r")), nil
}

func runUserList(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user list", "--data DIR [--json]", &data)
	asJSON := fs.Bool("json", false, "JSON output")
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
	fmt.Fprintln(tw, "EMAIL\tROLE\tTERRITORIES\tCREATED\tSTATE")
	for _, u := range us {
		state := "active"
		if !u.Active() {
			state = "disabled " + ts(u.Disabled)
		}
		terr := strings.Join(u.Territories, ",")
		if terr == "" {
			terr = "all"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.Role, terr, ts(u.Created), state)
	}
	return tw.Flush()
}

func runUserDisable(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user disable", "--data DIR --email E", &data)
	email := fs.String("email", "", "the user's e-mail")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByEmail(ctx, *email)
	if err != nil {
		return fmt.Errorf("%s: %w", *email, err)
	}
	now := time.Now()
	if err := st.SetUserDisabled(ctx, u.ID, now); err != nil {
		return err
	}
	if err := st.Audit(ctx, accounts.AuditEntry{At: now, Email: "cli", Action: accounts.ActionUserDisabled, What: u.Email}); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "User %s disabled; their sessions are closed.\n", u.Email)
	return nil
}

// runUserToken prints a bearer token for the dashboard's read-only JSON
// API, with the rights of the user it belongs to.
func runUserToken(ctx context.Context, e *Env, args []string) error {
	var data string
	fs := newFlags(e, "user token", "--data DIR --email E --name NAME [--expires 2160h]", &data)
	email := fs.String("email", "", "the user whose rights the token carries")
	name := fs.String("name", "", "what the token is for")
	expires := fs.Duration("expires", 90*24*time.Hour, "validity (0: none)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return usagef("--name is required")
	}
	st, err := openStore(ctx, e, data)
	if err != nil {
		return err
	}
	defer st.Close()
	u, err := st.UserByEmail(ctx, *email)
	if err != nil {
		return fmt.Errorf("%s: %w", *email, err)
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
	fmt.Fprintf(e.Stderr, "API token for %s (%s); shown once. Use: Authorization: Bearer TOKEN on /api/…\n", u.Email, *name)
	return nil
}
