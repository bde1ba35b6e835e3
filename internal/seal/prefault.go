package seal

import (
	"runtime"
	"runtime/metrics"
)

// freeHeapMetric is the runtime's count of heap bytes that are free but
// still backed by physical memory (faulted in, not returned to the OS).
const freeHeapMetric = "/memory/classes/heap/free:bytes"

// prefault makes sure the heap holds n free bytes that are already backed
// by physical memory before Argon2id allocates its n-byte matrix.
//
// Why: in a fresh process (every CLI command, the agent's first unlock)
// that matrix lands on pages the kernel has never mapped, and on the
// reference VM faulting them in while Argon2id runs costs about 200 ms
// more than the derivation itself (64 MiB: ~320 ms instead of ~105 ms),
// whereas touching the same pages in one sequential sweep costs ~50 ms.
// Freed again and collected, the swept block is what Argon2id's
// allocation reuses. When the heap already has that much free memory
// (a warm process) this does nothing.
func prefault(n int) {
	s := []metrics.Sample{{Name: freeHeapMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 && s[0].Value.Uint64() >= uint64(n) {
		return
	}
	b := make([]byte, n)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	runtime.KeepAlive(b)
	runtime.GC()
}

// collect runs a collection as Argon2id returns, when its matrix has just
// become garbage.
//
// Why: the matrix was live at the collection its allocation triggered,
// so the pacer's next goal is twice its size, and nothing is collected
// before the heap reaches it. Whatever the program allocates next — an
// `agent sync` reading and sending its outbox — then takes fresh pages
// on top of the matrix's: that process peaked at 154 MiB for 64 MiB of
// matrix and a live heap that never passed 20 MiB. Collected at once, the
// matrix's pages are free heap that the next allocations reuse, the
// goal falls back to the live heap's, and the peak is the derivation's
// own (TestDerivationLeavesNoHeapGoalBehind).
func collect() { runtime.GC() }
