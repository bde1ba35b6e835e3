package e2e

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// cutProxy forwards loopback TCP connections to a target and cuts each
// one after a random number of bytes (both directions counted), at any
// byte: in the middle of a TLS record, a websocket frame, a CBOR item.
type cutProxy struct {
	ln       net.Listener
	target   string
	min, max int64
	rng      *rand.Rand
	mu       sync.Mutex
	cuts     atomic.Int64
	wg       sync.WaitGroup
}

func startCutProxy(t testing.TB, target string, min, max int64, seed uint64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, min: min, max: max, rng: rand.New(rand.NewPCG(seed, seed))}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		budget := p.min + p.rng.Int64N(p.max-p.min+1)
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c, budget)
	}
}

func (p *cutProxy) serve(c net.Conn, budget int64) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	var left atomic.Int64
	left.Store(budget)
	var once sync.Once
	cut := func(counted bool) {
		once.Do(func() {
			if counted {
				p.cuts.Add(1)
			}
			c.Close()
			up.Close()
		})
	}
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 4096)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				rem := left.Add(-int64(n))
				if rem < 0 {
					// Forward only up to the budget, then cut.
					keep := int64(n) + rem
					if keep > 0 {
						dst.Write(buf[:keep])
					}
					cut(true)
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					cut(false)
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					cut(false)
				}
				cut(false)
				return
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(up, c) }()
	go func() { defer wg.Done(); pipe(c, up) }()
	wg.Wait()
}
