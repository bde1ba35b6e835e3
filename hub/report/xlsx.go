package report

import (
	"archive/zip"
	"compress/flate"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// XLSX exports are written with excelize's StreamWriter, row after row:
// it keeps 16 MiB of a sheet in memory and the rest in a temporary file
// (os.TempDir), removed when the export ends. excelize then builds the
// whole zip in a bytes.Buffer (File.WriteToBuffer) — a memory as large as
// the file —, so book.finish gives it, through its SetZipWriter hook, a
// zip writer that writes to the HTTP response instead: the buffer stays
// empty and the file streams out.
//
// Cells are typed: counts and durations are numbers ("# ##0" in a French
// Excel), dates are dates (JJ/MM/AAAA), percentages are fractions shown
// as « 10,6 % », texts are inline strings. A text cell is never a
// formula, whatever it starts with; one that Cell would quote (=, +, -,
// @…) is also formatted as Text ("@"), so that editing it in the
// spreadsheet does not turn it into one either — without the quote Cell
// adds to CSV cells, which a spreadsheet would show here. Labels of
// several codes share a cell, one a line (wrapped).

// sheetBytes bounds the XML of one sheet: zip stores larger entries as
// ZIP64, which Excel reads only with a header excelize patches into its
// in-memory buffer, which a streamed file does not have. A sheet that
// would pass it goes on in a new sheet, as one past Excel's row limit.
const sheetBytes = 3 << 30

// sheetRows is the most rows of a sheet: Excel's limit (a variable for
// the tests, which lower it).
var sheetRows = excelize.TotalRows

// topRow is a row above a sheet's table: the export's information and
// filters. Title rows are bold.
type topRow struct {
	cells []cell
	title bool
}

// sheetSpec says how to lay out the sheets of a book: their name (the
// following ones are "name (2)"…), the rows above the table, repeated on
// each, the table's columns, their widths, and the columns whose cells
// hold several lines.
type sheetSpec struct {
	name   string
	table  string // name of the Excel table (letters, digits, _)
	top    []topRow
	cols   []string
	widths []float64
	wrap   []bool
}

// book is an XLSX file being written: one sheet after another, each with
// the same top rows and table columns.
type book struct {
	f    *excelize.File
	sw   *excelize.StreamWriter
	spec sheetSpec
	loc  *time.Location
	n    int   // sheets begun
	row  int   // last row written on the current sheet
	head int   // row of the table's header on the current sheet
	size int64 // estimated bytes of XML of the current sheet (int64: 3 GiB overflows a 32-bit int)
	st   struct{ bold, day, time, num, dec, pct, text, top, wrap int }
	vals []any
}

func newBook(spec sheetSpec, loc *time.Location) (*book, error) {
	b := &book{f: excelize.NewFile(), spec: spec, loc: loc}
	b.f.SetDocProps(&excelize.DocProperties{Creator: "Numéribus Sync", Language: "fr-FR", Title: spec.name})
	for _, s := range []struct {
		id    *int
		style excelize.Style
	}{
		{&b.st.bold, excelize.Style{Font: &excelize.Font{Bold: true}}},
		{&b.st.day, excelize.Style{CustomNumFmt: ptr("dd/mm/yyyy"), Alignment: &excelize.Alignment{Vertical: "top", Horizontal: "left"}}},
		{&b.st.time, excelize.Style{CustomNumFmt: ptr("dd/mm/yyyy hh:mm"), Alignment: &excelize.Alignment{Vertical: "top", Horizontal: "left"}}},
		{&b.st.num, excelize.Style{NumFmt: 3, Alignment: &excelize.Alignment{Vertical: "top"}}},                   // # ##0
		{&b.st.dec, excelize.Style{NumFmt: 4, Alignment: &excelize.Alignment{Vertical: "top"}}},                   // # ##0,00
		{&b.st.pct, excelize.Style{CustomNumFmt: ptr("0.0 %"), Alignment: &excelize.Alignment{Vertical: "top"}}},  // 10,6 %
		{&b.st.text, excelize.Style{NumFmt: 49, Alignment: &excelize.Alignment{Vertical: "top", WrapText: true}}}, // @, Text
		{&b.st.top, excelize.Style{Alignment: &excelize.Alignment{Vertical: "top"}}},
		{&b.st.wrap, excelize.Style{Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}}},
	} {
		id, err := b.f.NewStyle(&s.style)
		if err != nil {
			b.f.Close()
			return nil, fmt.Errorf("xlsx: %w", err)
		}
		*s.id = id
	}
	if err := b.newSheet(); err != nil {
		b.f.Close()
		return nil, err
	}
	return b, nil
}

func ptr[T any](v T) *T { return &v }

// newSheet ends the current sheet, if any, and begins the next one: its
// columns, its top rows, its table header.
func (b *book) newSheet() error {
	if err := b.endSheet(); err != nil {
		return err
	}
	b.n++
	name := b.spec.name
	if b.n == 1 {
		if err := b.f.SetSheetName("Sheet1", name); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	} else {
		name = fmt.Sprintf("%s (%d)", b.spec.name, b.n)
		if _, err := b.f.NewSheet(name); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	sw, err := b.f.NewStreamWriter(name)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	b.sw, b.row, b.size = sw, 0, 0
	for i, w := range b.spec.widths {
		if err := sw.SetColWidth(i+1, i+1, w); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
		st := b.st.top
		if i < len(b.spec.wrap) && b.spec.wrap[i] {
			st = b.st.wrap
		}
		if err := sw.SetColStyle(i+1, i+1, st); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	b.head = len(b.spec.top) + 2
	// The table's header stays in view while scrolling.
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: b.head, TopLeftCell: "A" + strconv.Itoa(b.head+1), ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	for _, r := range b.spec.top {
		if err := b.write(r.cells, r.title); err != nil {
			return err
		}
	}
	b.row++ // an empty row before the table
	header := make([]cell, len(b.spec.cols))
	for i, c := range b.spec.cols {
		header[i] = textCell(c)
	}
	return b.write(header, true)
}

// endSheet closes the current sheet: its Excel table (filters on every
// column) when it has rows, then its stream.
func (b *book) endSheet() error {
	if b.sw == nil {
		return nil
	}
	if b.row > b.head {
		last, _ := excelize.CoordinatesToCellName(len(b.spec.cols), b.row)
		name := b.spec.table
		if b.n > 1 {
			name += "_" + strconv.Itoa(b.n)
		}
		if err := b.sw.AddTable(&excelize.Table{Range: "A" + strconv.Itoa(b.head) + ":" + last, Name: name,
			StyleName: "TableStyleLight9", ShowRowStripes: ptr(true)}); err != nil {
			return fmt.Errorf("xlsx: %w", err)
		}
	}
	if err := b.sw.Flush(); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	b.sw = nil
	return nil
}

// add writes one line of the table, on a new sheet when this one is full.
func (b *book) add(cells []cell) error {
	if b.row >= sheetRows || b.size >= sheetBytes {
		if err := b.newSheet(); err != nil {
			return err
		}
	}
	return b.write(cells, false)
}

// write writes cells on the next row.
func (b *book) write(cells []cell, bold bool) error {
	b.row++
	b.vals = b.vals[:0]
	for _, c := range cells {
		b.vals = append(b.vals, b.value(c, bold))
	}
	b.size += int64(64 * len(cells))
	ref, err := excelize.CoordinatesToCellName(1, b.row)
	if err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if err := b.sw.SetRow(ref, b.vals); err != nil {
		return fmt.Errorf("xlsx: row %d: %w", b.row, err)
	}
	return nil
}

// excelEpoch is day 0 of Excel's 1900 date system (as Excel counts, with
// its 29 February 1900).
var excelEpoch = time.Date(1899, 12, 30, 0, 0, 0, 0, time.UTC)

// value is c as excelize writes it: nil leaves the cell out.
func (b *book) value(c cell, bold bool) any {
	styled := func(style int, v any) any { return excelize.Cell{StyleID: style, Value: v} }
	switch c.kind {
	case cText:
		b.size += int64(len(c.text))
		if bold {
			return styled(b.st.bold, c.text)
		}
		if Cell(c.text) != c.text {
			return styled(b.st.text, c.text)
		}
		return c.text
	case cList:
		s := strings.Join(c.list, "\n")
		b.size += int64(len(s))
		return s
	case cInt:
		return styled(b.st.num, int64(c.num))
	case cDecimal:
		return styled(b.st.dec, c.num)
	case cPercent:
		return styled(b.st.pct, c.num)
	case cDay:
		return styled(b.st.day, DayTime(c.day).Sub(excelEpoch).Hours()/24)
	case cTime:
		wall := c.time.In(b.loc)
		y, m, d := wall.Date()
		local := time.Date(y, m, d, wall.Hour(), wall.Minute(), wall.Second(), 0, time.UTC)
		return styled(b.st.time, local.Sub(excelEpoch).Hours()/24)
	}
	return nil
}

// finish ends the last sheet and writes the file to w.
func (b *book) finish(w io.Writer) error {
	defer b.f.Close()
	if err := b.endSheet(); err != nil {
		return err
	}
	b.f.SetActiveSheet(0)
	var zw *zip.Writer
	b.f.SetZipWriter(func(io.Writer) excelize.ZipWriter {
		zw = zip.NewWriter(w)
		// Deflate's fastest level: a third of the export's time went to
		// compressing at the default level, for a file a little smaller.
		zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
			return flate.NewWriter(out, flate.BestSpeed)
		})
		return zw
	})
	if err := b.f.Write(io.Discard); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if zw == nil {
		return fmt.Errorf("xlsx: the zip writer was not used")
	}
	return nil
}

// close drops the book without writing it (its temporary files go).
func (b *book) close() { b.f.Close() }
