package wire

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"sync"
)

// A vehicle at the edge of coverage pays for every byte: the records of a
// change set compress to about a third (field numbers, codes and dates
// repeat from record to record). Over a slow link (the agent measures its
// round trip), a sender may wrap a frame in a [Deflated] frame: the agent
// its pushes, the hub the pages of a Pull that asks for it
// (Pull.Deflate). On a fast link the agent still deflates its pushes, at
// the fastest level (150 MB/s a core: 0.15 s for a 100,000-change
// backlog, whose frames shrink to about 0.4 of their size, and inflating
// costs the hub less than reading the bytes it saves), but the hub does
// not deflate pages: a burst of a thousand agents pulls gigabytes, which
// would cost it more CPU than its pulls. Decode unwraps a Deflated
// frame transparently, counting the inflated bytes against MaxFrame, so
// that no small frame inflates into a large one.
//
// Over a slow link each frame is deflated on its own at the best level. Measured on
// realistic records (internal/e2e, issue #13): a week away, 1,000 records
// in one 200 KB push, deflates to 57.2 KB at BestSpeed and 50.4 KB at
// the best level (a day of work: 3.7 KB and 3.5 KB); at 19 MB/s a core
// that costs 10 ms, nothing against the 6 s the link takes to carry it.
// One DEFLATE stream per connection and direction (context takeover, as
// permessage-deflate does) saved 15 more bytes of 50 KB, as a sync's
// frames are a few large pushes: not worth an inflater state that must
// stay in step with frames the hub drops.
//
// Compression under TLS leaks sizes (CRIME, BREACH) only when an attacker
// can mix chosen text with a secret in one compressed stream and watch
// the sizes, round after round: nobody but the mediator writes what a
// push carries, and each frame is compressed on its own.

// Deflated carries one other frame compressed with DEFLATE (RFC 1951):
// agent → hub or hub → agent (protocol 5).
type Deflated struct {
	Frame []byte `cbor:"1,keyasint,omitempty"` // the compressed frame, never a Deflated itself
}

func (*Deflated) Type() Type { return TypeDeflated }

func (m *Deflated) check() error {
	if len(m.Frame) == 0 {
		return errors.New("empty compressed frame")
	}
	return nil
}

func (m *Deflated) normalize() { m.Frame = nilIfEmpty(m.Frame) }

// deflaters hold the compressors of each level used: the best
// (slow links) and the fastest (pushes on a fast link).
var deflaters = map[int]*sync.Pool{
	flate.BestCompression: {New: func() any { w, _ := flate.NewWriter(nil, flate.BestCompression); return w }},
	flate.BestSpeed:       {New: func() any { w, _ := flate.NewWriter(nil, flate.BestSpeed); return w }},
}

// Deflate returns the encoded frame wrapped in a Deflated frame at the
// best level, or frame itself when compressing does not make it smaller.
func Deflate(frame []byte) ([]byte, error) { return DeflateAt(frame, flate.BestCompression) }

// DeflateAt is Deflate at level, flate.BestCompression or flate.BestSpeed.
func DeflateAt(frame []byte, level int) ([]byte, error) {
	pool := deflaters[level]
	if pool == nil {
		return nil, fmt.Errorf("compressing a frame: level %d not kept", level)
	}
	var buf bytes.Buffer
	w := pool.Get().(*flate.Writer)
	defer pool.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(frame); err != nil {
		return nil, fmt.Errorf("compressing a frame: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("compressing a frame: %w", err)
	}
	if buf.Len()+8 >= len(frame) {
		return frame, nil
	}
	return Encode(&Deflated{Frame: buf.Bytes()})
}

// inflate returns the frame d carries: at most MaxFrame bytes, and not a
// Deflated frame again.
func inflate(d *Deflated) (Message, error) {
	r := flate.NewReader(bytes.NewReader(d.Frame))
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, MaxFrame+1))
	if err != nil {
		return nil, fmt.Errorf("%w: deflated frame: %w", ErrMalformed, err)
	}
	if len(b) > MaxFrame {
		return nil, fmt.Errorf("%w: deflated frame inflates beyond %d bytes", ErrTooLarge, MaxFrame)
	}
	if t, err := peekType(b); err == nil && t == TypeDeflated {
		return nil, fmt.Errorf("%w: a deflated frame inside a deflated frame", ErrMalformed)
	}
	return Decode(b)
}
