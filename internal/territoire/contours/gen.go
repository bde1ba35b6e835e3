//go:build ignore

// gen builds data/contours.bin.gz from the per-département GeoJSON files
// of IGN's Admin Express 2018 (simplified) and the list of former
// communes (data/anciennes-communes.csv). Nothing runs it at build or
// test time; data/README.md tells how it was run:
//
//	go run gen.go -src /path/to/contours-communes
//
// Every ring is quantised to 1/Scale of a degree; consecutive equal
// points are dropped, and rings left with fewer than three points. The
// outline of a commune merged since 2018 goes to the current commune
// that absorbed it (anciennes-communes.csv), so that a commune nouvelle
// is drawn whole.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// scale is the grid, in points per degree: 1/5000 of a degree is 22 m of
// latitude and 15 m of longitude in mainland France, well under a pixel
// of a département's map (about 150 m) and of an EPCI's (about 30 m). A
// finer grid (1/10000) costs 17 % more bytes; simplifying further does
// not pay: the source keeps about one point every 240 m already, and a
// Douglas-Peucker pass that keeps neighbours' borders identical took
// off 2 % at 25 m.
const scale = 5000

type feature struct {
	Properties struct {
		Code string `json:"code"`
	} `json:"properties"`
	Geometry struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	} `json:"geometry"`
}

type ring struct {
	hole bool
	pts  [][2]int64
}

func main() {
	src := flag.String("src", "", "directory of communes-*.geojson")
	out := flag.String("out", "data/contours.bin.gz", "output file")
	flag.Parse()
	former := map[string]string{}
	f, err := os.Open("data/anciennes-communes.csv")
	if err != nil {
		log.Fatal(err)
	}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		a, b, ok := strings.Cut(sc.Text(), ";")
		if !ok {
			log.Fatalf("anciennes-communes.csv: %q", sc.Text())
		}
		former[a] = b
	}
	f.Close()
	files, err := filepath.Glob(filepath.Join(*src, "communes-*.geojson"))
	if err != nil || len(files) == 0 {
		log.Fatalf("no GeoJSON in %q", *src)
	}
	rings := map[string][]ring{}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			log.Fatal(err)
		}
		var fc struct{ Features []feature }
		if err := json.Unmarshal(b, &fc); err != nil {
			log.Fatalf("%s: %v", name, err)
		}
		for _, ft := range fc.Features {
			code := ft.Properties.Code
			if to, ok := former[code]; ok {
				code = to
			}
			var polys [][][][2]float64
			switch ft.Geometry.Type {
			case "Polygon":
				var p [][][2]float64
				if err := json.Unmarshal(ft.Geometry.Coordinates, &p); err != nil {
					log.Fatal(err)
				}
				polys = [][][][2]float64{p}
			case "MultiPolygon":
				if err := json.Unmarshal(ft.Geometry.Coordinates, &polys); err != nil {
					log.Fatal(err)
				}
			default:
				log.Fatalf("%s: %s: geometry %s", name, code, ft.Geometry.Type)
			}
			for _, p := range polys {
				for i, r := range p {
					q := quantise(r)
					if len(q) >= 3 {
						rings[code] = append(rings[code], ring{hole: i > 0, pts: q})
					}
				}
			}
		}
	}
	codes := make([]string, 0, len(rings))
	for c := range rings {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var raw bytes.Buffer
	raw.WriteString("NBCONT1\n")
	put := func(v uint64) { raw.Write(binary.AppendUvarint(nil, v)) }
	put(scale)
	put(uint64(len(codes)))
	var cx, cy int64
	points := 0
	for _, c := range codes {
		if len(c) != 5 {
			log.Fatalf("code %q", c)
		}
		raw.WriteString(c)
		put(uint64(len(rings[c])))
		for _, r := range rings[c] {
			h := uint64(0)
			if r.hole {
				h = 1
			}
			put(uint64(len(r.pts))<<1 | h)
			for _, p := range r.pts {
				raw.Write(binary.AppendVarint(nil, p[0]-cx))
				raw.Write(binary.AppendVarint(nil, p[1]-cy))
				cx, cy = p[0], p[1]
				points++
			}
		}
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(raw.Bytes())
	w.Close()
	if err := os.WriteFile(*out, gz.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d communes, %d points, %d bytes raw, %d bytes gzip\n", len(codes), points, raw.Len(), gz.Len())
}

// quantise rounds a ring to the grid, drops repeated points and the
// closing point (rings are closed implicitly).
func quantise(r [][2]float64) [][2]int64 {
	var out [][2]int64
	for _, p := range r {
		q := [2]int64{int64(math.Round(p[0] * scale)), int64(math.Round(p[1] * scale))}
		if len(out) > 0 && out[len(out)-1] == q {
			continue
		}
		out = append(out, q)
	}
	if len(out) > 1 && out[0] == out[len(out)-1] {
		out = out[:len(out)-1]
	}
	return out
}
