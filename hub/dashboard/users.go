package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"numeribus/hub/accounts"
)

// Accounts are managed on the dashboard by admins (as with `hub user`):
// create an account, disable and enable it again, reset its password,
// change its territories. Every action is audited; the forms go through
// the same guard as every write (cross-origin posts refused), and a
// password is never kept nor shown again: only its Argon2id hash is
// stored, and a drawn one is shown once, on the page that answers the
// reset.

// hashParams are the Argon2id costs of passwords set here
// (accounts.DefaultParams; tests make them cheap).
func (s *Server) hashParams() accounts.Params {
	if s.cfg.PasswordParams != (accounts.Params{}) {
		return s.cfg.PasswordParams
	}
	return accounts.DefaultParams
}

func (s *Server) userRoutes(mux *http.ServeMux) {
	mux.Handle("GET /utilisateurs", s.admin(s.getUsers))
	mux.Handle("POST /utilisateurs", s.admin(s.postUser))
	mux.Handle("GET /utilisateurs/{id}", s.admin(s.getUser))
	mux.Handle("POST /utilisateurs/{id}/desactiver", s.admin(s.postUserDisable))
	mux.Handle("POST /utilisateurs/{id}/reactiver", s.admin(s.postUserEnable))
	mux.Handle("POST /utilisateurs/{id}/mot-de-passe", s.admin(s.postUserPassword))
	mux.Handle("POST /utilisateurs/{id}/territoires", s.admin(s.postUserTerritories))
}

// auditShown is how many audit entries the users page lists.
const auditShown = 200

type usersData struct {
	Users []accounts.User
	Audit []accounts.AuditEntry
	Form  userForm
	Roles []accounts.Role
}

// userForm is the "new account" form, kept as typed when refused (the
// password aside).
type userForm struct {
	Email, Role, Territories string
	Generate                 bool
	Problems                 []string
}

// newPassword is a password just drawn, shown once.
type newPassword struct {
	Email, Password string
}

func (s *Server) getUsers(w http.ResponseWriter, r *http.Request) {
	s.showUsers(w, r, http.StatusOK, userForm{Role: string(accounts.RoleCoordinator), Generate: true}, "")
}

func (s *Server) showUsers(w http.ResponseWriter, r *http.Request, status int, f userForm, flash string) {
	us, err := s.cfg.Accounts.Users(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	log, err := s.cfg.Accounts.AuditLog(r.Context(), auditShown)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := s.page(r, "title_users", usersData{Users: us, Audit: log, Form: f, Roles: accounts.Roles})
	p.Flash = flash
	s.render(w, r, status, "users", p)
}

// postUser creates an account from the form: a password typed twice, or
// drawn and shown once.
func (s *Server) postUser(w http.ResponseWriter, r *http.Request) {
	f := userForm{Email: strings.TrimSpace(r.PostFormValue("email")), Role: r.PostFormValue("role"),
		Territories: strings.TrimSpace(r.PostFormValue("territoires")), Generate: r.PostFormValue("mdp") != "choisi"}
	email, err := accounts.NormalizeEmail(f.Email)
	if err != nil {
		f.Problems = append(f.Problems, tr("user_bad_email", f.Email))
	}
	role, err := accounts.ParseRole(f.Role)
	if err != nil {
		f.Problems = append(f.Problems, tr("user_bad_role"))
	}
	var codes []string
	if role != "" {
		if codes, err = accounts.CheckTerritories(s.terr, role, []string{f.Territories}); err != nil {
			f.Problems = append(f.Problems, capitalize(err.Error())+".")
		}
	}
	pw, problem := s.formPassword(r, f.Generate)
	if problem != "" {
		f.Problems = append(f.Problems, problem)
	}
	if len(f.Problems) > 0 {
		s.showUsers(w, r, http.StatusUnprocessableEntity, f, "")
		return
	}
	hash, err := accounts.HashPassword([]byte(pw), s.hashParams())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.cfg.Accounts.CreateUser(r.Context(), accounts.User{Email: email, Role: role, Territories: codes, PasswordHash: hash, Created: s.cfg.Now()})
	if errors.Is(err, accounts.ErrEmailTaken) {
		f.Problems = []string{tr("user_taken", email)}
		s.showUsers(w, r, http.StatusConflict, f, "")
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, accounts.ActionUserCreated, fmt.Sprintf("%s (%s %s)", u.Email, u.Role, strings.Join(u.Territories, " ")))
	shown := (*newPassword)(nil)
	if f.Generate {
		shown = &newPassword{Email: u.Email, Password: pw}
	}
	s.showUser(w, r, http.StatusCreated, u, tr("user_created", u.Email), shown, "")
}

// formPassword returns the password of a form: drawn when generate, else
// the one typed twice (password, password2), with a French problem when
// it cannot be used.
func (s *Server) formPassword(r *http.Request, generate bool) (string, string) {
	if generate {
		pw, err := accounts.GeneratePassword()
		if err != nil {
			s.log.Error("drawing a password failed", "err", err)
			return "", tr("internal_error")
		}
		return pw, ""
	}
	pw, again := r.PostFormValue("password"), r.PostFormValue("password2")
	if err := accounts.CheckPasswordStrength([]byte(pw)); err != nil {
		return "", capitalize(err.Error()) + "."
	}
	if pw != again {
		return "", tr("user_pw_differ")
	}
	return pw, ""
}

// capitalize puts the first letter of a message of accounts in upper
// case, to show it as a sentence.
func capitalize(s string) string {
	for i, c := range s {
		return strings.ToUpper(string(c)) + s[i+len(string(c)):]
	}
	return s
}

type userData struct {
	U       *accounts.User
	Self    bool // the admin looking at their own account
	NewPass *newPassword
	TerrIn  string // territories as typed
	Problem string
	Roles   []accounts.Role
}

// userOf reads the account of the request's {id}; a missing one is
// answered with the 404 page.
func (s *Server) userOf(w http.ResponseWriter, r *http.Request) (accounts.User, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		s.errorPage(w, r, http.StatusNotFound, tr("user_unknown"))
		return accounts.User{}, false
	}
	u, err := s.cfg.Accounts.UserByID(r.Context(), id)
	if errors.Is(err, accounts.ErrNoUser) {
		s.errorPage(w, r, http.StatusNotFound, tr("user_unknown"))
		return u, false
	}
	if err != nil {
		s.fail(w, r, err)
		return u, false
	}
	return u, true
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	if u, ok := s.userOf(w, r); ok {
		s.showUser(w, r, http.StatusOK, u, "", nil, "")
	}
}

func (s *Server) showUser(w http.ResponseWriter, r *http.Request, status int, u accounts.User, flash string, np *newPassword, problem string) {
	d := userData{U: &u, Self: u.ID == whoOf(r).user.ID, NewPass: np, TerrIn: strings.Join(u.Territories, " "), Problem: problem, Roles: accounts.Roles}
	if problem != "" && r.Method == http.MethodPost {
		d.TerrIn = strings.TrimSpace(r.PostFormValue("territoires"))
	}
	p := s.page(r, "title_user", d)
	p.Title = tr("title_user", u.Email)
	p.Flash = flash
	if np != nil {
		// A password shown once must not stay in a cache.
		w.Header().Set("Cache-Control", "no-store")
	}
	s.render(w, r, status, "user", p)
}

func (s *Server) postUserDisable(w http.ResponseWriter, r *http.Request) { s.setDisabled(w, r, true) }
func (s *Server) postUserEnable(w http.ResponseWriter, r *http.Request)  { s.setDisabled(w, r, false) }

// setDisabled disables (their sessions end at once) or enables an
// account. An admin cannot disable themselves: the hub would be left
// without the one who can undo it.
func (s *Server) setDisabled(w http.ResponseWriter, r *http.Request, disable bool) {
	u, ok := s.userOf(w, r)
	if !ok {
		return
	}
	if disable && u.ID == whoOf(r).user.ID {
		s.showUser(w, r, http.StatusUnprocessableEntity, u, "", nil, tr("user_not_self"))
		return
	}
	at, action, flash := s.cfg.Now(), accounts.ActionUserDisabled, tr("user_disabled_done", u.Email)
	if !disable {
		at, action, flash = time.Time{}, accounts.ActionUserEnabled, tr("user_enabled_done", u.Email)
	}
	if err := s.cfg.Accounts.SetUserDisabled(r.Context(), u.ID, at); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, action, u.Email)
	u, err := s.cfg.Accounts.UserByID(r.Context(), u.ID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.showUser(w, r, http.StatusOK, u, flash, nil, "")
}

// postUserPassword resets an account's password: drawn and shown once,
// or typed twice by the admin. The account's sessions end.
func (s *Server) postUserPassword(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userOf(w, r)
	if !ok {
		return
	}
	generate := r.PostFormValue("mdp") != "choisi"
	pw, problem := s.formPassword(r, generate)
	if problem != "" {
		s.showUser(w, r, http.StatusUnprocessableEntity, u, "", nil, problem)
		return
	}
	hash, err := accounts.HashPassword([]byte(pw), s.hashParams())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.Accounts.SetUserPassword(r.Context(), u.ID, hash); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, accounts.ActionPasswordReset, u.Email)
	var np *newPassword
	if generate {
		np = &newPassword{Email: u.Email, Password: pw}
	}
	s.showUser(w, r, http.StatusOK, u, tr("user_pw_done", u.Email), np, "")
}

// postUserTerritories replaces what a coordinator or a viewer sees.
func (s *Server) postUserTerritories(w http.ResponseWriter, r *http.Request) {
	u, ok := s.userOf(w, r)
	if !ok {
		return
	}
	in := strings.TrimSpace(r.PostFormValue("territoires"))
	codes, err := accounts.CheckTerritories(s.terr, u.Role, []string{in})
	if err != nil {
		s.showUser(w, r, http.StatusUnprocessableEntity, u, "", nil, capitalize(err.Error())+".")
		return
	}
	if err := s.cfg.Accounts.SetUserTerritories(r.Context(), u.ID, codes); err != nil {
		s.fail(w, r, err)
		return
	}
	s.audit(r, accounts.ActionTerritories, u.Email+" : "+strings.Join(codes, " "))
	u.Territories = codes
	s.showUser(w, r, http.StatusOK, u, tr("user_terr_done", u.Email), nil, "")
}
