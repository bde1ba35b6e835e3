// Package contours embeds the outlines of the French communes, for the
// hub's map (hub/dashboard, /carte): IGN's Admin Express 2018 as
// simplified by the france-geojson project, Licence Ouverte (data/README.md).
//
// It is a package of its own, apart from internal/territoire, so that only
// the hub carries the 3.5 MB of outlines: the agent, which needs the
// communes' names but draws no map, does not link it.
//
// The outlines are those of 2018. A commune merged into a commune nouvelle
// since then is drawn as a part of the current commune that absorbed it,
// so that the new commune is whole; a commune created or re-established
// since 2018 (and the overseas collectivities, which IGN's file does not
// cover) has no outline: [Set.Missing] lists them, and a map must say so
// rather than leave them out silently.
package contours

import (
	"bytes"
	"compress/gzip"
	_ "embed" // for //go:embed
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"

	"numeribus/internal/territoire"
)

//go:embed data/contours.bin.gz
var contoursGz string

// magic starts the uncompressed file (data/README.md gives its layout).
const magic = "NBCONT1\n"

// Point is a vertex on the file's grid: longitude and latitude times
// [Set.Scale], as integers, so that the points two neighbours share are
// equal and a map can find their common border.
type Point struct{ X, Y int32 }

// Ring is one closed ring of an outline (its last point joins the
// first); Hole marks an inner ring (an enclave of another commune).
type Ring struct {
	Hole bool
	Pts  []Point
}

// Outline is the outline of one current commune: its rings, from its
// 2018 outline and those of the communes it absorbed since.
type Outline struct {
	Code  string
	Rings []Ring
	// Min and Max bound every ring.
	Min, Max Point
	// Lat and Lon are the centroid of the commune's area, in degrees.
	Lat, Lon float64
}

// Set is the outlines of every commune that has one, sorted by code.
type Set struct {
	scale    int
	outlines []Outline
}

var (
	defaultOnce sync.Once
	defaultSet  *Set
)

// Default returns the embedded outlines, decoded on first use (half a
// second on the test machine, about 20 MB of memory: the hub's first map
// pays it) and shared. It panics if the
// embedded file is corrupt, which the package's tests rule out.
func Default() *Set {
	defaultOnce.Do(func() {
		s, err := Load()
		if err != nil {
			panic(err)
		}
		defaultSet = s
	})
	return defaultSet
}

// Load decodes the embedded outlines into a new Set.
func Load() (*Set, error) {
	zr, err := gzip.NewReader(strings.NewReader(contoursGz))
	if err != nil {
		return nil, fmt.Errorf("contours: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("contours: %w", err)
	}
	return decode(raw)
}

var errCorrupt = errors.New("contours: corrupt data")

// decode reads the uncompressed file: the magic, the scale, the number of
// communes, then per commune its 5-character code, its ring count and per
// ring (points<<1 | hole) and the points as zigzag varint deltas from the
// previous point of the file.
func decode(raw []byte) (*Set, error) {
	if !bytes.HasPrefix(raw, []byte(magic)) {
		return nil, fmt.Errorf("%w: no header", errCorrupt)
	}
	r := bytes.NewReader(raw[len(magic):])
	uv := func() (uint64, error) { return binary.ReadUvarint(r) }
	scale, err := uv()
	if err != nil || scale == 0 || scale > 1e6 {
		return nil, fmt.Errorf("%w: scale", errCorrupt)
	}
	n, err := uv()
	if err != nil || n > 100_000 {
		return nil, fmt.Errorf("%w: count", errCorrupt)
	}
	s := &Set{scale: int(scale), outlines: make([]Outline, 0, n)}
	var x, y int64
	code := make([]byte, 5)
	for range n {
		if _, err := io.ReadFull(r, code); err != nil {
			return nil, fmt.Errorf("%w: code: %v", errCorrupt, err)
		}
		o := Outline{Code: string(code), Min: Point{math.MaxInt32, math.MaxInt32}, Max: Point{math.MinInt32, math.MinInt32}}
		nr, err := uv()
		if err != nil || nr == 0 || nr > 10_000 {
			return nil, fmt.Errorf("%w: rings of %s", errCorrupt, o.Code)
		}
		for range nr {
			h, err := uv()
			np := h >> 1
			if err != nil || np < 3 || np > uint64(r.Len()) {
				return nil, fmt.Errorf("%w: ring of %s", errCorrupt, o.Code)
			}
			ring := Ring{Hole: h&1 == 1, Pts: make([]Point, np)}
			for i := range ring.Pts {
				dx, err1 := binary.ReadVarint(r)
				dy, err2 := binary.ReadVarint(r)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("%w: points of %s", errCorrupt, o.Code)
				}
				x, y = x+dx, y+dy
				p := Point{int32(x), int32(y)}
				ring.Pts[i] = p
				o.Min = Point{min(o.Min.X, p.X), min(o.Min.Y, p.Y)}
				o.Max = Point{max(o.Max.X, p.X), max(o.Max.Y, p.Y)}
			}
			o.Rings = append(o.Rings, ring)
		}
		o.Lon, o.Lat = centroid(o.Rings, float64(scale))
		if len(s.outlines) > 0 && s.outlines[len(s.outlines)-1].Code >= o.Code {
			return nil, fmt.Errorf("%w: %s out of order", errCorrupt, o.Code)
		}
		s.outlines = append(s.outlines, o)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last commune", errCorrupt, r.Len())
	}
	return s, nil
}

// centroid is the centroid of the area the rings enclose (holes taken
// off), in degrees; for degenerate rings, the mean of their points.
func centroid(rings []Ring, scale float64) (lon, lat float64) {
	var a, cx, cy float64
	var sx, sy, np float64
	for _, r := range rings {
		var ra, rx, ry float64
		for i, p := range r.Pts {
			q := r.Pts[(i+1)%len(r.Pts)]
			// Relative to the ring's first point, for precision.
			x0, y0 := float64(p.X-r.Pts[0].X), float64(p.Y-r.Pts[0].Y)
			x1, y1 := float64(q.X-r.Pts[0].X), float64(q.Y-r.Pts[0].Y)
			cross := x0*y1 - x1*y0
			ra += cross
			rx += (x0 + x1) * cross
			ry += (y0 + y1) * cross
			sx += float64(p.X)
			sy += float64(p.Y)
			np++
		}
		if ra == 0 {
			continue
		}
		// The ring's own centroid, back in grid units.
		gx, gy := rx/(3*ra)+float64(r.Pts[0].X), ry/(3*ra)+float64(r.Pts[0].Y)
		w := math.Abs(ra)
		if r.Hole {
			w = -w
		}
		a += w
		cx += w * gx
		cy += w * gy
	}
	if a <= 0 {
		return sx / np / scale, sy / np / scale
	}
	return cx / a / scale, cy / a / scale
}

// Scale is the grid: points per degree.
func (s *Set) Scale() int { return s.scale }

// Len is the number of communes with an outline.
func (s *Set) Len() int { return len(s.outlines) }

// Outline returns the outline of the commune code (a current INSEE code).
// The rings are shared: do not modify them.
func (s *Set) Outline(code string) (Outline, bool) {
	i, ok := slices.BinarySearchFunc(s.outlines, code, func(o Outline, c string) int { return strings.Compare(o.Code, c) })
	if !ok {
		return Outline{}, false
	}
	return s.outlines[i], true
}

// Missing returns the communes of cs that have no outline, in their
// order: communes created or re-established since 2018, overseas
// collectivities.
func (s *Set) Missing(cs []territoire.Commune) []territoire.Commune {
	var out []territoire.Commune
	for _, c := range cs {
		if _, ok := s.Outline(c.Code); !ok {
			out = append(out, c)
		}
	}
	return out
}
