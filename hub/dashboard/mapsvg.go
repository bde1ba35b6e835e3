package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"

	"numeribus/hub/report"
	"numeribus/internal/territoire"
	"numeribus/internal/territoire/contours"
)

// The map drawn on the server as SVG, like the charts (chart.go): no
// tiles, no script, no network. Each commune is a link to its row of the
// table beside the map, so it is reached with the keyboard and read with
// its name and figures; its fill is its class of the legend. Borders are
// drawn apart from the fills, once: between communes thin, and thick
// where the two sides lie in different EPCI (or at the edge of the
// territory). A border is found as an edge whose two ends the
// neighbours share exactly, which the outlines' grid guarantees
// (internal/territoire/contours); the edges between the former parts of a
// commune nouvelle are not drawn.

// mapWidth is the SVG's width in user units; the height follows the
// territory's shape.
const mapWidth = 1000

// mapMaxHeight bounds the height (a tall territory is narrower).
const mapMaxHeight = 1100

// mapPoint is a projected point, in user units.
type mapPoint struct{ X, Y int }

// projection maps the outlines' grid to the SVG: equirectangular, the
// longitude shrunk by the cosine of the territory's middle latitude,
// which keeps shapes true at a département's scale.
type projection struct {
	minX, maxY int32
	kx, s      float64
	W, H       int
}

func newProjection(min, max contours.Point, scale int) projection {
	midLat := float64(min.Y+max.Y) / 2 / float64(scale)
	kx := math.Cos(midLat * math.Pi / 180)
	w := math.Max(1, float64(max.X-min.X)*kx)
	h := math.Max(1, float64(max.Y-min.Y))
	s := float64(mapWidth-20) / w
	if h*s > mapMaxHeight-20 {
		s = float64(mapMaxHeight-20) / h
	}
	return projection{minX: min.X, maxY: max.Y, kx: kx, s: s, W: int(math.Ceil(w*s)) + 20, H: int(math.Ceil(h*s)) + 20}
}

func (p projection) at(q contours.Point) mapPoint {
	return mapPoint{10 + int(math.Round(float64(q.X-p.minX)*p.kx*p.s)), 10 + int(math.Round(float64(p.maxY-q.Y)*p.s))}
}

// atLatLon projects degrees.
func (p projection) atLatLon(lat, lon float64, scale int) mapPoint {
	return p.at(contours.Point{X: int32(math.Round(lon * float64(scale))), Y: int32(math.Round(lat * float64(scale)))})
}

// mapDrawing is what drawMap needs.
type mapDrawing struct {
	Communes []report.MapCommune
	Labels   map[string]string // commune code → accessible name
	Places   []report.MapPlace // fixed places to mark, where they fall inside
	Title    string
	Desc     string
}

// edge is a border segment between two grid points, in a canonical
// order.
type edge struct{ a, b contours.Point }

func mkEdge(p, q contours.Point) edge {
	if p.X > q.X || p.X == q.X && p.Y > q.Y {
		p, q = q, p
	}
	return edge{p, q}
}

// drawMap renders the map; it returns "" when no commune has an outline.
func drawMap(d mapDrawing) template.HTML {
	set := contours.Default()
	x := territoire.Default()
	type drawn struct {
		c report.MapCommune
		o contours.Outline
	}
	var cs []drawn
	min := contours.Point{X: math.MaxInt32, Y: math.MaxInt32}
	max := contours.Point{X: math.MinInt32, Y: math.MinInt32}
	for _, c := range d.Communes {
		o, ok := set.Outline(c.Code)
		if !ok {
			continue
		}
		cs = append(cs, drawn{c, o})
		min = contours.Point{X: minI32(min.X, o.Min.X), Y: minI32(min.Y, o.Min.Y)}
		max = contours.Point{X: maxI32(max.X, o.Max.X), Y: maxI32(max.Y, o.Max.Y)}
	}
	if len(cs) == 0 {
		return ""
	}
	pr := newProjection(min, max, set.Scale())
	// Who lies on each side of every edge.
	type sides struct {
		a, b string // commune codes; b is "" while one side is known
		n    int
	}
	owners := make(map[edge]*sides, 1<<14)
	for _, dc := range cs {
		for _, r := range dc.o.Rings {
			for i, p := range r.Pts {
				e := mkEdge(p, r.Pts[(i+1)%len(r.Pts)])
				sd := owners[e]
				switch {
				case sd == nil:
					owners[e] = &sides{a: dc.c.Code, n: 1}
				default:
					sd.b = dc.c.Code
					sd.n++
				}
			}
		}
	}
	epciOf := func(code string) string {
		if c, ok := x.Commune(code); ok {
			return c.EPCI
		}
		return ""
	}
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="map" id="map" viewBox="0 0 %d %d" role="group" aria-labelledby="map-t map-d">`, pr.W, pr.H)
	fmt.Fprintf(&b, `<title id="map-t">%s</title><desc id="map-d">%s</desc>`, esc(d.Title), esc(d.Desc))
	b.WriteString(`<g class="communes">`)
	for _, dc := range cs {
		label := d.Labels[dc.c.Code]
		fmt.Fprintf(&b, `<a href="#t-%s" id="m-%s" class="q%d" aria-label="%s"><title>%s</title><path d="`, dc.c.Code, dc.c.Code, dc.c.Classe, esc(label), esc(label))
		for _, r := range dc.o.Rings {
			writeRing(&b, pr, r.Pts)
		}
		b.WriteString(`"/></a>`)
	}
	b.WriteString(`</g>`)
	// Borders: each edge once, in runs along the rings.
	var thin, thick strings.Builder
	done := make(map[edge]bool, len(owners))
	for _, dc := range cs {
		for _, r := range dc.o.Rings {
			var runThin, runThick []contours.Point
			flush := func(run *[]contours.Point, out *strings.Builder) {
				if len(*run) >= 2 {
					writeLine(out, pr, *run)
				}
				*run = (*run)[:0]
			}
			n := len(r.Pts)
			for i := 0; i < n; i++ {
				p, q := r.Pts[i], r.Pts[(i+1)%n]
				e := mkEdge(p, q)
				sd := owners[e]
				kind := 0 // 0: not drawn, 1: thin, 2: thick
				if !done[e] {
					switch {
					case sd.n == 1 || sd.b == "":
						kind = 2 // the territory's edge
					case sd.a == sd.b:
						kind = 0 // between the parts of one commune
					case epciOf(sd.a) != epciOf(sd.b):
						kind = 2
					default:
						kind = 1
					}
					done[e] = true
				}
				for k, run := range []*[]contours.Point{&runThin, &runThick} {
					out := &thin
					if k == 1 {
						out = &thick
					}
					if kind == k+1 {
						if len(*run) == 0 {
							*run = append(*run, p)
						}
						*run = append(*run, q)
					} else {
						flush(run, out)
					}
				}
			}
			flush(&runThin, &thin)
			flush(&runThick, &thick)
		}
	}
	fmt.Fprintf(&b, `<path class="borders" aria-hidden="true" d="%s"/>`, thin.String())
	fmt.Fprintf(&b, `<path class="epci" aria-hidden="true" d="%s"/>`, thick.String())
	// Fixed places inside the frame, then planned stops on top.
	b.WriteString(`<g class="places" aria-hidden="true">`)
	for _, p := range d.Places {
		lat, lon := p.Lat, p.Lon
		if !p.HasCoords {
			o, ok := set.Outline(p.Commune)
			if !ok {
				continue
			}
			lat, lon = o.Lat, o.Lon
		}
		m := pr.atLatLon(lat, lon, set.Scale())
		if m.X < 0 || m.Y < 0 || m.X > pr.W || m.Y > pr.H {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="9" height="9"/>`, m.X-4, m.Y-4)
	}
	b.WriteString(`</g><g class="stops" aria-hidden="true">`)
	for _, dc := range cs {
		if dc.c.Prevus > 0 {
			m := pr.atLatLon(dc.o.Lat, dc.o.Lon, set.Scale())
			fmt.Fprintf(&b, `<circle cx="%d" cy="%d" r="7"/>`, m.X, m.Y)
		}
	}
	b.WriteString(`</g></svg>`)
	return template.HTML(b.String())
}

// writeRing writes a closed ring as an SVG subpath in relative integer
// moves, dropping points that project onto the previous one; a ring
// smaller than a unit is left out.
func writeRing(b *strings.Builder, pr projection, pts []contours.Point) {
	first := pr.at(pts[0])
	var buf []byte
	prev := first
	moves := 0
	for _, p := range pts[1:] {
		q := pr.at(p)
		if q == prev {
			continue
		}
		buf = append(buf, 'l')
		buf = strconv.AppendInt(buf, int64(q.X-prev.X), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, int64(q.Y-prev.Y), 10)
		prev = q
		moves++
	}
	if moves < 2 {
		return
	}
	fmt.Fprintf(b, "M%d %d", first.X, first.Y)
	b.Write(buf)
	b.WriteByte('z')
}

// writeLine writes an open polyline.
func writeLine(b *strings.Builder, pr projection, pts []contours.Point) {
	first := pr.at(pts[0])
	prev := first
	var buf []byte
	for _, p := range pts[1:] {
		q := pr.at(p)
		if q == prev {
			continue
		}
		buf = append(buf, 'l')
		buf = strconv.AppendInt(buf, int64(q.X-prev.X), 10)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, int64(q.Y-prev.Y), 10)
		prev = q
	}
	if len(buf) == 0 {
		return
	}
	fmt.Fprintf(b, "M%d %d", first.X, first.Y)
	b.Write(buf)
}

func minI32(a, b int32) int32 {
	if a < b {
		return a
	}
	return b
}

func maxI32(a, b int32) int32 {
	if a > b {
		return a
	}
	return b
}
