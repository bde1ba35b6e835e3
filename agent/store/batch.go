package store

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"numeribus/internal/change"
	"numeribus/internal/domain"
	"numeribus/internal/ident"
	"numeribus/internal/merge"
)

// A batch write (Save) defers its rows: the writer goroutine merges each
// record and assigns its change's seq and stamp, and the CBOR encoding and
// sealing of the rows — half of a save's CPU — run on the other cores
// while the writer inserts the rows already sealed. Only SQLite's single
// writer stays serial.
//
// Deferred rows are not in SQL until flush: a deferred transaction must
// read records through load (which sees w.cached) and call flush before
// any other query that could see them (write flushes before commit).

// deferred is one logged change and, when it is the record's last one in
// the batch, the record row to write.
type deferred struct {
	k       domain.Kind
	id      ident.ID
	st      *merge.State
	c       *change.Change
	lastRec bool // the record row is written with this entry

	recBody, chgBody, hubBody []byte
	err                       error
}

// cachedRecord is the state of a record written by this transaction and
// not yet flushed.
type cachedRecord struct {
	k  domain.Kind
	st *merge.State
}

// deferRows starts deferring this transaction's record and change rows.
func (w *writeTx) deferRows(n int) {
	w.pending = make([]deferred, 0, n)
	w.cached = make(map[ident.ID]cachedRecord, n)
	w.lastPending = make(map[ident.ID]int, n)
}

// deferApply queues the rows of c, applied to st.
func (w *writeTx) deferApply(st *merge.State, c *change.Change) {
	if i, ok := w.lastPending[c.ID]; ok {
		w.pending[i].lastRec = false // the later entry writes the final state
	}
	w.lastPending[c.ID] = len(w.pending)
	w.pending = append(w.pending, deferred{k: c.Kind, id: c.ID, st: st, c: c, lastRec: true})
	w.cached[c.ID] = cachedRecord{k: c.Kind, st: st}
}

// flushChunk is how many rows a sealing worker takes at a time: small
// enough for the writer to start inserting early, large enough to keep
// the hand-over cheap.
const flushChunk = 256

// flush seals the deferred rows on the spare cores and inserts them, in
// order, on the writer connection as each chunk is ready.
func (w *writeTx) flush() error {
	rows := w.pending
	w.pending, w.cached, w.lastPending = nil, nil, nil
	if len(rows) == 0 {
		return nil
	}
	// The envelope may insert its key row: resolve it here, serially.
	env, err := w.envelope()
	if err != nil {
		return err
	}
	nChunks := (len(rows) + flushChunk - 1) / flushChunk
	sealChunk := func(ci int) {
		for j := ci * flushChunk; j < min((ci+1)*flushChunk, len(rows)); j++ {
			w.sealRow(&rows[j], env)
		}
	}
	// Each chunk is sealed once, by whoever claims it first: a worker
	// ahead of the writer, or the writer itself rather than wait.
	claimed := make([]atomic.Bool, nChunks)
	ready := make([]chan struct{}, nChunks)
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	// On an early return the workers stop at their next chunk, and flush
	// waits for them: nothing seals behind the caller's back.
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := make(chan struct{})
	defer close(stop)
	var next atomic.Int64
	// A single chunk (a form's save) is sealed by the writer alone.
	for range min(max(1, runtime.GOMAXPROCS(0)-1), nChunks-1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ci := int(next.Add(1) - 1)
				if ci >= nChunks {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
				if claimed[ci].CompareAndSwap(false, true) {
					sealChunk(ci)
					close(ready[ci])
				}
			}
		}()
	}
	for ci := range nChunks {
		if claimed[ci].CompareAndSwap(false, true) {
			sealChunk(ci)
		} else {
			select {
			case <-ready[ci]:
			case <-w.done.Done():
				return w.done.Err()
			}
		}
		for j := ci * flushChunk; j < min((ci+1)*flushChunk, len(rows)); j++ {
			if err := w.insertRow(&rows[j], env); err != nil {
				return err
			}
		}
	}
	return nil
}

// sealRow encodes and seals one deferred entry. It runs on a worker: it
// reads the entry's state and change, which nothing mutates any more.
func (w *writeTx) sealRow(d *deferred, env *envelope) {
	if d.lastRec {
		if d.recBody, d.err = w.sealState(d.k, d.id, d.st); d.err != nil {
			return
		}
	}
	d.chgBody, d.hubBody, d.err = w.sealChange(d.c, env)
}

// insertRow writes a sealed entry's rows.
func (w *writeTx) insertRow(d *deferred, env *envelope) error {
	if d.err != nil {
		return fmt.Errorf("sealing %s %s: %w", d.k, d.id, d.err)
	}
	if d.lastRec {
		if err := w.putState(d.k, d.id, d.st, d.recBody); err != nil {
			return err
		}
	}
	return w.logChange(d.c, d.chgBody, d.hubBody, env)
}

// validateAll validates recs on the spare cores and returns their
// problems in batch order. It runs beside flush: it reads only what the
// batch's puts left (w.kinds, w.wasErased, the consent index idx) and
// queries SQL, under batchEnv's lock, only for records outside the batch.
func (w *writeTx) validateAll(recs []domain.Record, idx *consentIndex) []ItemError {
	env := &batchEnv{w: w, idx: idx, stored: map[ident.ID]domain.Kind{}}
	errs := make([]error, len(recs))
	validate := func(k, workers int) {
		for i := k; i < len(recs); i += workers {
			r := recs[i]
			err := r.Validate(env)
			if w.wasErased[r.RecordID()] {
				err = withoutPersonal(r.Kind(), err)
			}
			errs[i] = err
		}
	}
	workers := min(max(1, runtime.GOMAXPROCS(0)-1), 1+len(recs)/256)
	if workers == 1 {
		validate(0, 1)
	} else {
		var wg sync.WaitGroup
		for k := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				validate(k, workers)
			}()
		}
		wg.Wait()
	}
	var out []ItemError
	for i, err := range errs {
		if err != nil {
			out = append(out, ItemError{i, err})
		}
	}
	return out
}

// batchEnv is the validation environment of a batch, safe for the
// validating goroutines.
type batchEnv struct {
	w   *writeTx
	idx *consentIndex

	mu     sync.Mutex
	stored map[ident.ID]domain.Kind // kinds read from SQL
}

func (e *batchEnv) CommuneExists(code string) bool { return e.w.CommuneExists(code) }

func (e *batchEnv) KindOf(id ident.ID) domain.Kind {
	if k, ok := e.w.kinds[id]; ok {
		return k
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if k, ok := e.stored[id]; ok {
		return k
	}
	k := e.w.storedKind(id)
	e.stored[id] = k
	return k
}

func (e *batchEnv) ActiveFinalites(b ident.ID) map[string]bool { return e.idx.active(b, ident.Nil) }

var _ domain.Env = (*batchEnv)(nil)
