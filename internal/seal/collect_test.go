package seal

import (
	"runtime/metrics"
	"testing"
)

// After a derivation the heap's goal is the live heap's again, not twice
// the matrix: what the program allocates next reuses the matrix's pages
// instead of adding to them (collect).
func TestDerivationLeavesNoHeapGoalBehind(t *testing.T) {
	const matrix = 32 << 20
	p := KDFParams{Time: 1, MemoryKiB: matrix >> 10, Threads: 1}
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Wrap(k, []byte("phrase de passe"), SlotPassphrase, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unwrap([]byte("phrase de passe")); err != nil {
		t.Fatal(err)
	}
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(goal)
	if got := goal[0].Value.Uint64(); got >= matrix {
		t.Fatalf("heap goal %d MiB after deriving with a %d MiB matrix: the next allocations will not reuse its pages", got>>20, matrix>>20)
	}
}
