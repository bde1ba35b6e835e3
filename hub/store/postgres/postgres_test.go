package postgres

import (
	"context"
	"errors"
	"sync"
	"testing"

	"numeribus/hub/store"
	"numeribus/hub/store/storetest"
	"numeribus/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a store on a new database of the test's own.
func open(t *testing.T) (*Store, string) {
	t.Helper()
	url := pgtest.NewDB(t)
	s, err := Open(context.Background(), url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, url
}

// Instances starting together over one database: one applies the
// migrations, the others wait for it, and all open the same schema.
func TestInstancesMigrateOnce(t *testing.T) {
	_, url := open(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(ctx, url, Options{})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s, _ := open(t)
	ms, _ := Migrations()
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != len(ms) {
		t.Fatalf("schema version %d (%v), want %d", v, err, len(ms))
	}
}

// A database written by a newer hub is refused, untouched.
func TestNewerSchemaRefused(t *testing.T) {
	s, url := open(t)
	ctx := context.Background()
	if _, err := s.pool.Exec(ctx, `UPDATE schema_version SET version = 999`); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, url, Options{}); !errors.Is(err, ErrTooNew) {
		t.Fatalf("Open on a newer schema: %v, want ErrTooNew", err)
	}
}

var _ storetest.Inspector = (*Store)(nil)

// The conformance suite of hub stores, on PostgreSQL.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		url := pgtest.NewDB(t)
		s, err := Open(context.Background(), url, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
