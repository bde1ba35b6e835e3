package diskspace

import (
	"os"
	"testing"
)

// The room of the test's directory: some left, less than the whole, and
// a missing directory is an error, not an empty disk.
func TestFree(t *testing.T) {
	sp, err := Free(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if sp.Total == 0 || sp.Avail == 0 || sp.Avail > sp.Total {
		t.Fatalf("space %+v", sp)
	}
	if _, err := Free(t.TempDir() + string(os.PathSeparator) + "absent"); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 o", 850: "850 o", 1536: "1,5 ko", 64 << 20: "64 Mo", 52_700_000: "50,3 Mo", 3 << 29: "1,5 Go",
	} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}
