package browsertest

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
)

// PDF reading for the print tests: how many pages Chromium's print to
// PDF made, and the text of each page, to check that the figures a page
// shows on screen are on paper too. It reads what Chromium (Skia) writes
// — objects in clear, Flate content streams, Type0 fonts with ToUnicode
// maps, text shown with Tj and TJ — not every PDF: it is test code.

var (
	objRE     = regexp.MustCompile(`(\d+)\s+0\s+obj\b`)
	pageRE    = regexp.MustCompile(`/Type\s*/Page\b`)
	refRE     = regexp.MustCompile(`(\d+)\s+0\s+R`)
	fontRefRE = regexp.MustCompile(`/(\w+)\s+(\d+)\s+0\s+R`)
)

// pdfDoc is the objects of a PDF by number.
type pdfDoc map[int][]byte

func parsePDF(pdf []byte) pdfDoc {
	d := pdfDoc{}
	for _, m := range objRE.FindAllSubmatchIndex(pdf, -1) {
		n, _ := strconv.Atoi(string(pdf[m[2]:m[3]]))
		end := bytes.Index(pdf[m[1]:], []byte("endobj"))
		if end < 0 {
			continue
		}
		d[n] = pdf[m[1] : m[1]+end]
	}
	return d
}

// dict is the dictionary part of an object (before its stream).
func dict(body []byte) []byte {
	if i := bytes.Index(body, []byte("stream")); i >= 0 {
		return body[:i]
	}
	return body
}

// stream returns an object's stream, inflated when Flate.
func stream(body []byte) ([]byte, error) {
	i := bytes.Index(body, []byte("stream"))
	if i < 0 {
		return nil, fmt.Errorf("no stream")
	}
	raw := body[i+len("stream"):]
	raw = bytes.TrimPrefix(bytes.TrimPrefix(raw, []byte("\r")), []byte("\n"))
	if j := bytes.LastIndex(raw, []byte("endstream")); j >= 0 {
		raw = raw[:j]
	}
	if !bytes.Contains(body[:i], []byte("/FlateDecode")) {
		return raw, nil
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out, err := io.ReadAll(zr)
	if err != nil && len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// PDFPages counts the pages of a PDF.
func PDFPages(pdf []byte) int { return len(pageRE.FindAll(pdf, -1)) }

// PDFText returns the text of each page of a PDF printed by Chromium, in
// page order: text objects (BT … ET) and moves to another line end a
// line.
func PDFText(pdf []byte) ([]string, error) {
	d := parsePDF(pdf)
	var pages []int
	for n, body := range d {
		if pageRE.Match(dict(body)) {
			pages = append(pages, n)
		}
	}
	// Page order: the /Kids of the /Pages object.
	for _, body := range d {
		dd := dict(body)
		if i := bytes.Index(dd, []byte("/Type /Pages")); i >= 0 || bytes.Contains(dd, []byte("/Type/Pages")) {
			if k := bytes.Index(dd, []byte("/Kids")); k >= 0 {
				end := bytes.IndexByte(dd[k:], ']')
				pages = pages[:0]
				for _, m := range refRE.FindAllSubmatch(dd[k:k+end], -1) {
					n, _ := strconv.Atoi(string(m[1]))
					pages = append(pages, n)
				}
			}
		}
	}
	var out []string
	for _, p := range pages {
		t, err := pageText(d, d[p])
		if err != nil {
			return nil, fmt.Errorf("page object %d: %w", p, err)
		}
		out = append(out, ligatures.Replace(t))
	}
	return out, nil
}

// ligatures are the glyphs a font's shaping may use for letters, which
// a search for a word would miss.
var ligatures = strings.NewReplacer("\ufb00", "ff", "\ufb01", "fi", "\ufb02", "fl", "\ufb03", "ffi", "\ufb04", "ffl", "\ufb05", "st", "\ufb06", "st")

// pageText decodes the content streams of a page with its fonts' maps.
func pageText(d pdfDoc, page []byte) (string, error) {
	pd := dict(page)
	fonts := map[string]map[string]string{}
	if i := bytes.Index(pd, []byte("/Font")); i >= 0 {
		end := bytes.Index(pd[i:], []byte(">>"))
		for _, m := range fontRefRE.FindAllSubmatch(pd[i+len("/Font"):i+end], -1) {
			n, _ := strconv.Atoi(string(m[2]))
			cmap, err := toUnicode(d, d[n])
			if err != nil {
				return "", fmt.Errorf("font %s: %w", m[1], err)
			}
			fonts[string(m[1])] = cmap
		}
	}
	var contents []int
	if i := bytes.Index(pd, []byte("/Contents")); i >= 0 {
		rest := pd[i+len("/Contents"):]
		if bytes.HasPrefix(bytes.TrimSpace(rest), []byte("[")) {
			rest = rest[:bytes.IndexByte(rest, ']')]
		} else if m := refRE.FindIndex(rest); m != nil {
			rest = rest[:m[1]]
		}
		for _, m := range refRE.FindAllSubmatch(rest, -1) {
			n, _ := strconv.Atoi(string(m[1]))
			contents = append(contents, n)
		}
	}
	var text strings.Builder
	for _, c := range contents {
		s, err := stream(d[c])
		if err != nil {
			return "", fmt.Errorf("content %d: %w", c, err)
		}
		showText(&text, s, fonts)
	}
	return text.String(), nil
}

// toUnicode reads the ToUnicode map of a font object: glyph code (hex)
// to text.
func toUnicode(d pdfDoc, font []byte) (map[string]string, error) {
	i := bytes.Index(font, []byte("/ToUnicode"))
	if i < 0 {
		return map[string]string{}, nil
	}
	m := refRE.FindSubmatch(font[i:])
	if m == nil {
		return nil, fmt.Errorf("no ToUnicode reference")
	}
	n, _ := strconv.Atoi(string(m[1]))
	s, err := stream(d[n])
	if err != nil {
		return nil, err
	}
	cmap := map[string]string{}
	hexes := regexp.MustCompile(`<([0-9A-Fa-f]+)>`)
	for _, sec := range regexp.MustCompile(`(?s)beginbfchar(.*?)endbfchar`).FindAllSubmatch(s, -1) {
		hs := hexes.FindAllSubmatch(sec[1], -1)
		for j := 0; j+1 < len(hs); j += 2 {
			cmap[strings.ToUpper(string(hs[j][1]))] = utf16Hex(string(hs[j+1][1]))
		}
	}
	for _, sec := range regexp.MustCompile(`(?s)beginbfrange(.*?)endbfrange`).FindAllSubmatch(s, -1) {
		hs := hexes.FindAllSubmatch(sec[1], -1)
		for j := 0; j+2 < len(hs); j += 3 {
			lo, _ := strconv.ParseUint(string(hs[j][1]), 16, 32)
			hi, _ := strconv.ParseUint(string(hs[j+1][1]), 16, 32)
			dst, _ := strconv.ParseUint(string(hs[j+2][1]), 16, 32)
			w := len(hs[j][1])
			for g := lo; g <= hi && g-lo < 65536; g++ {
				cmap[fmt.Sprintf("%0*X", w, g)] = string(rune(dst + g - lo))
			}
		}
	}
	return cmap, nil
}

// utf16Hex decodes a UTF-16BE hex string.
func utf16Hex(h string) string {
	b, err := hex.DecodeString(h)
	if err != nil {
		return ""
	}
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])<<8|uint16(b[i+1]))
	}
	return string(utf16.Decode(u))
}

var tokenRE = regexp.MustCompile(`<[0-9A-Fa-f]*>|\[[^\]]*\]|/\w+|-?[0-9.]+|[A-Za-z*']+`)

// showText appends the text a content stream shows, a line per text
// object or line move.
func showText(out *strings.Builder, content []byte, fonts map[string]map[string]string) {
	var (
		font  map[string]string
		stack []string
	)
	decode := func(h string) {
		h = strings.ToUpper(strings.Trim(h, "<>"))
		for i := 0; i+4 <= len(h); i += 4 {
			out.WriteString(font[h[i:i+4]])
		}
	}
	for _, tok := range tokenRE.FindAllString(string(content), -1) {
		switch tok {
		case "Tf":
			if len(stack) >= 2 {
				font = fonts[strings.TrimPrefix(stack[len(stack)-2], "/")]
			}
		case "Tj", "'":
			if len(stack) > 0 && font != nil {
				decode(stack[len(stack)-1])
			}
		case "TJ":
			if len(stack) > 0 && font != nil {
				for _, h := range regexp.MustCompile(`<[0-9A-Fa-f]*>`).FindAllString(stack[len(stack)-1], -1) {
					decode(h)
				}
			}
		case "Td", "TD":
			if len(stack) >= 2 && stack[len(stack)-1] != "0" {
				out.WriteByte('\n')
			}
		case "T*", "ET":
			out.WriteByte('\n')
		}
		if tok[0] == '<' || tok[0] == '[' || tok[0] == '/' || tok[0] == '-' || tok[0] == '.' || (tok[0] >= '0' && tok[0] <= '9') {
			stack = append(stack, tok)
		} else {
			stack = stack[:0]
		}
	}
}
