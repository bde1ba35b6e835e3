// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster
// started once per test binary (initdb into a temporary directory, the
// server on a free loopback port, stopped when the tests end), or the
// server NUMERIBUS_PG_URL names. Each test gets a database of its own,
// dropped after it.
//
// Without PostgreSQL on the machine a test is skipped, except under CI,
// where it fails: CI installs PostgreSQL (.ci/run), and a database test
// that silently skips there tests nothing.
//
// A package whose tests use it calls Main from its TestMain, so that the
// cluster is stopped when its tests end.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names an existing server to use instead of a throwaway cluster:
// a URL whose user may create databases.
const EnvURL = "NUMERIBUS_PG_URL"

var (
	once    sync.Once
	server  *cluster
	baseURL string
	initErr error
)

// cluster is a server this package started.
type cluster struct {
	dir, bin string
	asUser   string // run the server's programs as this user ("" : ourselves)
}

// Main runs the tests of a package and stops the cluster after them.
func Main(m *testing.M) {
	code := m.Run()
	if server != nil {
		server.stop()
	}
	os.Exit(code)
}

// NewDB creates an empty database for the test and returns its URL. The
// database is dropped when the test ends.
func NewDB(tb testing.TB) string {
	tb.Helper()
	base := serverURL(tb)
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("pgtest: connecting to %s: %v", redact(base), err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: creating database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("pgtest: dropping %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("pgtest: dropping %s: %v", name, err)
		}
	})
	u, _ := url.Parse(base)
	u.Path = "/" + name
	return u.String()
}

// serverURL starts the cluster once, or takes EnvURL, and returns the URL
// of its maintenance database.
func serverURL(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			baseURL = u
			return
		}
		server, baseURL, initErr = start()
	})
	if initErr != nil {
		if errors.Is(initErr, errNoPostgres) && os.Getenv("CI") == "" {
			tb.Skipf("pgtest: %v (install PostgreSQL or set %s)", initErr, EnvURL)
		}
		tb.Fatalf("pgtest: %v", initErr)
	}
	return baseURL
}

var errNoPostgres = errors.New("no PostgreSQL server programs (initdb, pg_ctl) on this machine")

// start makes a cluster in a temporary directory and starts its server
// on a free loopback port. As root, the programs run as the postgres user
// (initdb refuses root).
func start() (*cluster, string, error) {
	bin, err := findBin()
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "numeribus-pg-")
	if err != nil {
		return nil, "", err
	}
	c := &cluster{dir: dir, bin: bin}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, "", fmt.Errorf("running as root and no postgres user to run the server as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, "", err
		}
		c.asUser = "postgres"
	}
	if out, err := c.run("initdb", "-D", dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		return nil, "", fmt.Errorf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	// Durability is not under test here: no fsync, so a test suite does
	// not wait on the disk. Benchmarks run their own server settings.
	opts := fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %d -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", dir, port)
	if out, err := c.run("pg_ctl", "-D", dir, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		return nil, "", fmt.Errorf("starting PostgreSQL: %v\n%s", err, out)
	}
	return c, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
}

func (c *cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = os.TempDir()
	return cmd.CombinedOutput()
}

func (c *cluster) stop() {
	c.run("pg_ctl", "-D", c.dir, "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.dir)
}

// findBin returns the directory of initdb and pg_ctl: Debian keeps them
// under /usr/lib/postgresql/VERSION/bin, off the PATH.
func findBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append([]string{filepath.Dir(p)}, dirs...)
	}
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	return "", errNoPostgres
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// redact hides a password in a URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxx")
	}
	return strings.TrimSpace(u.String())
}
