package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"numeribus/internal/diskspace"
	"numeribus/internal/domain"
)

func TestDiskState(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		avail, total  uint64
		low, refusing bool
	}{
		{avail: 100_000 * mib, total: 200_000 * mib},
		{avail: 1000 * mib, total: 200_000 * mib, low: true}, // under 2 %
		{avail: 200 * mib, total: 1000 * mib, low: true},     // under 256 Mio
		{avail: 63 * mib, total: 1000 * mib, low: true, refusing: true},
		{avail: 64 * mib, total: 100 * mib, low: true},
	} {
		d := diskState(diskspace.Space{Avail: tc.avail, Total: tc.total})
		if d.Low != tc.low || d.Refusing != tc.refusing || !d.Known {
			t.Errorf("%d of %d Mio: %+v, want low %v refusing %v", tc.avail/mib, tc.total/mib, d, tc.low, tc.refusing)
		}
	}
}

// While the disk is nearly full a save writes nothing and says how much
// room is left; an erasure still goes through; once room is made, saves
// go through again. The room is measured once per period, not per save.
func TestSaveRefusedWhenDiskLow(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var avail atomic.Uint64
	avail.Store(10 << 20)
	var calls atomic.Int32
	s, _, err := Create(ctx, t.TempDir(), []byte(testPass), Options{KDF: testKDF,
		Wall: func() time.Time { return now },
		FreeSpace: func(string) (diskspace.Space, error) {
			calls.Add(1)
			return diskspace.Space{Avail: avail.Load(), Total: 100 << 30}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, c, a := followed(domain.FinaliteSuivi)
	_, err = s.Save(ctx, b, c, a)
	var dl *DiskLowError
	if !errors.As(err, &dl) || !errors.Is(err, ErrDiskLow) || dl.Avail != 10<<20 {
		t.Fatalf("save on a nearly full disk: %v, want DiskLowError", err)
	}
	if last, _, _ := s.Seqs(ctx); last != 0 {
		t.Fatalf("a refused save logged %d changes", last)
	}
	if _, err := s.Get(ctx, b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused save stored the record: %v", err)
	}
	in := make(chan []domain.Record)
	go func() {
		for range 3 {
			in <- []domain.Record{ptrActivity()}
		}
		close(in)
	}()
	if _, err := s.SaveStream(ctx, in); !errors.Is(err, ErrDiskLow) {
		t.Fatalf("import on a nearly full disk: %v", err)
	}
	if d := s.Disk(); !d.Refusing || !d.Low {
		t.Errorf("disk state %+v", d)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the room was measured %d times in one period, want 1", n)
	}

	avail.Store(10 << 30)
	now = now.Add(diskEvery)
	mustSave(t, s, b, c, a)
	if d := s.Disk(); d.Refusing || d.Low {
		t.Errorf("disk state after room was made: %+v", d)
	}
	avail.Store(1 << 20)
	now = now.Add(diskEvery)
	if _, err := s.EraseBeneficiary(ctx, b.ID); err != nil {
		t.Fatalf("an erasure on a nearly full disk: %v", err)
	}
	if _, err := s.Save(ctx, ptrActivity()); !errors.Is(err, ErrDiskLow) {
		t.Fatalf("save after the disk filled again: %v", err)
	}
}
