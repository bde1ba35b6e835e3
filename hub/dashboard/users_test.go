package dashboard

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"numeribus/hub/accounts"
)

var shownPassword = regexp.MustCompile(`<code id="password-shown" class="code">([^<]+)</code>`)

// userID finds the account of email in the store.
func (e *env) userID(email string) int64 {
	e.t.Helper()
	u, err := e.st.UserByEmail(context.Background(), email)
	if err != nil {
		e.t.Fatalf("user %s: %v", email, err)
	}
	return u.ID
}

// auditOf returns the audit entries' "action what" of the given actor,
// oldest first.
func (e *env) auditOf(actor string) []string {
	e.t.Helper()
	log, err := e.st.AuditLog(context.Background(), 500)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].Email == actor {
			out = append(out, string(log[i].Action)+" "+log[i].What)
		}
	}
	return out
}

// TestUserManagementFlow: an admin creates a coordinator with a drawn
// password shown once; the coordinator logs in with it; the admin
// disables the account (the open session ends, the login is refused),
// enables it, resets its password to one they choose (the old one and
// the session stop working), and changes its territories (the next
// request sees the new scope). Every step is in the audit log, in order.
func TestUserManagementFlow(t *testing.T) {
	e := newEnv(t, false)
	admin := e.login("admin@hub.fr")
	code, body, _ := e.post(admin, "/utilisateurs", url.Values{"email": {"Nouvelle@CD54.fr"}, "role": {"coordinator"},
		"territoires": {"54"}, "mdp": {"genere"}})
	m := shownPassword.FindStringSubmatch(body)
	if code != http.StatusCreated || m == nil {
		t.Fatalf("create: %d, no password shown:\n%s", code, body)
	}
	pw := html.UnescapeString(m[1])
	if err := accounts.CheckPasswordStrength([]byte(pw)); err != nil {
		t.Fatalf("drawn password %q: %v", pw, err)
	}
	id := e.userID("nouvelle@cd54.fr")
	page := "/utilisateurs/" + strconv.FormatInt(id, 10)
	if _, body, _ := e.get(admin, page); strings.Contains(body, pw) {
		t.Fatal("the password is shown again on the account's page")
	}
	coord := e.client()
	if code, _ := e.tryLogin(coord, "nouvelle@cd54.fr", pw); code != http.StatusSeeOther {
		t.Fatalf("login with the drawn password: %d", code)
	}
	if code, _, _ := e.get(coord, "/apercu"); code != http.StatusOK {
		t.Fatalf("the new coordinator's overview: %d", code)
	}

	if code, body, _ := e.post(admin, page+"/desactiver", url.Values{}); code != http.StatusOK || !strings.Contains(body, "désactivé") {
		t.Fatalf("disable: %d", code)
	}
	if code, _, res := e.get(coord, "/apercu"); code != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("a disabled user's session still works: %d", code)
	}
	if code, body := e.tryLogin(e.client(), "nouvelle@cd54.fr", pw); code != http.StatusUnauthorized || !strings.Contains(body, "incorrect") {
		t.Fatalf("a disabled user logs in: %d", code)
	}

	if code, _, _ := e.post(admin, page+"/reactiver", url.Values{}); code != http.StatusOK {
		t.Fatalf("enable: %d", code)
	}
	coord = e.client()
	if code, _ := e.tryLogin(coord, "nouvelle@cd54.fr", pw); code != http.StatusSeeOther {
		t.Fatalf("login once enabled: %d", code)
	}
	const chosen = "un autre mot de passe assez long"
	if code, body, _ := e.post(admin, page+"/mot-de-passe", url.Values{"mdp": {"choisi"}, "password": {chosen}, "password2": {chosen}}); code != http.StatusOK || shownPassword.MatchString(body) {
		t.Fatalf("reset to a chosen password: %d (a chosen password is not shown)", code)
	}
	if code, _, _ := e.get(coord, "/apercu"); code != http.StatusSeeOther {
		t.Fatalf("session after a reset: %d, want the login", code)
	}
	if code, _ := e.tryLogin(e.client(), "nouvelle@cd54.fr", pw); code != http.StatusUnauthorized {
		t.Fatalf("old password after a reset: %d", code)
	}
	coord = e.client()
	if code, _ := e.tryLogin(coord, "nouvelle@cd54.fr", chosen); code != http.StatusSeeOther {
		t.Fatalf("new password: %d", code)
	}

	if code, body, _ := e.post(admin, page+"/territoires", url.Values{"territoires": {"dep:88 54395"}}); code != http.StatusOK || !strings.Contains(body, "Vosges (88)") {
		t.Fatalf("territories: %d", code)
	}
	if code, body, _ := e.get(coord, "/api/overview"); code != http.StatusOK || !strings.Contains(body, `"dep:88"`) || !strings.Contains(body, `"com:54395"`) {
		t.Fatalf("the coordinator's scope after the change: %d %s", code, body)
	}

	want := []string{"user_created nouvelle@cd54.fr (coordinator 54)", "user_disabled nouvelle@cd54.fr", "user_enabled nouvelle@cd54.fr",
		"password_reset nouvelle@cd54.fr", "user_territories nouvelle@cd54.fr : 54395 88"}
	got := e.auditOf("admin@hub.fr")
	var acts []string
	for _, a := range got {
		if !strings.HasPrefix(a, "login") {
			acts = append(acts, a)
		}
	}
	if strings.Join(acts, "\n") != strings.Join(want, "\n") {
		t.Fatalf("admin's audit entries:\n%s\nwant:\n%s", strings.Join(acts, "\n"), strings.Join(want, "\n"))
	}
	if _, body, _ := e.get(admin, "/utilisateurs"); !strings.Contains(body, "Mot de passe réinitialisé") || !strings.Contains(body, "Compte désactivé") {
		t.Fatal("the audit log on the page does not name the actions in French")
	}
}

// TestUserFormsRefuse: a bad form is refused with a French message and
// nothing is created or changed; a coordinator cannot manage accounts;
// another site cannot post the form; an admin cannot disable themselves.
func TestUserFormsRefuse(t *testing.T) {
	e := newEnv(t, false)
	admin := e.login("admin@hub.fr")
	for _, tc := range []struct {
		name string
		form url.Values
		code int
		msg  string
	}{
		{"not an e-mail", url.Values{"email": {"coordinateur"}, "role": {"viewer"}, "mdp": {"genere"}}, 422, "n'est pas une adresse e-mail"},
		{"unknown role", url.Values{"email": {"a@cd54.fr"}, "role": {"chef"}, "mdp": {"genere"}}, 422, "Choisissez un rôle"},
		{"coordinator without territory", url.Values{"email": {"a@cd54.fr"}, "role": {"coordinator"}, "mdp": {"genere"}}, 422, "au moins un territoire"},
		{"unknown territory", url.Values{"email": {"a@cd54.fr"}, "role": {"coordinator"}, "territoires": {"999"}, "mdp": {"genere"}}, 422, "inconnu"},
		{"admin with territory", url.Values{"email": {"a@cd54.fr"}, "role": {"admin"}, "territoires": {"54"}, "mdp": {"genere"}}, 422, "tous les territoires"},
		{"short password", url.Values{"email": {"a@cd54.fr"}, "role": {"viewer"}, "mdp": {"choisi"}, "password": {"court"}, "password2": {"court"}}, 422, "au moins 12"},
		{"passwords differ", url.Values{"email": {"a@cd54.fr"}, "role": {"viewer"}, "mdp": {"choisi"}, "password": {"un mot de passe long"}, "password2": {"un autre mot de passe"}}, 422, "diffèrent"},
		{"e-mail taken", url.Values{"email": {"COORD54@cd54.fr"}, "role": {"viewer"}, "mdp": {"genere"}}, 409, "existe déjà"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := e.post(admin, "/utilisateurs", tc.form)
			if code != tc.code || !strings.Contains(html.UnescapeString(body), tc.msg) || shownPassword.MatchString(body) {
				t.Fatalf("%d, want %d with %q", code, tc.code, tc.msg)
			}
		})
	}
	if us, _ := e.st.Users(context.Background()); len(us) != 4 {
		t.Fatalf("%d accounts after refused forms, want the 4 of the test", len(us))
	}

	coord := e.login("coord54@cd54.fr")
	target := "/utilisateurs/" + strconv.FormatInt(e.userID("coord88@cd88.fr"), 10)
	for _, p := range []string{"/utilisateurs", target + "/desactiver", target + "/mot-de-passe"} {
		if code, _, _ := e.post(coord, p, url.Values{"email": {"x@cd54.fr"}, "role": {"admin"}, "mdp": {"genere"}}); code != http.StatusForbidden {
			t.Errorf("coordinator POST %s: %d, want 403", p, code)
		}
	}
	if code, _, _ := e.postFrom(admin, "https://evil.example", "cross-site", target+"/desactiver", url.Values{}); code != http.StatusForbidden {
		t.Errorf("cross-site disable: %d, want 403", code)
	}
	if u, _ := e.st.UserByEmail(context.Background(), "coord88@cd88.fr"); !u.Active() {
		t.Fatal("a refused request disabled the account")
	}
	self := "/utilisateurs/" + strconv.FormatInt(e.userID("admin@hub.fr"), 10)
	if code, _, _ := e.post(admin, self+"/desactiver", url.Values{}); code != http.StatusUnprocessableEntity {
		t.Fatalf("an admin disabling themselves: %d, want 422", code)
	}
	if code, _, _ := e.get(admin, "/utilisateurs/999999"); code != http.StatusNotFound {
		t.Fatalf("unknown account: %d", code)
	}
}
