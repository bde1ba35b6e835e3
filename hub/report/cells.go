package report

import (
	"strconv"
	"strings"
	"time"
)

// cell is one value of an export line, typed so that each format writes
// it its own way: CSV as French text (« 10,6 % », 15/06/2026), XLSX as a
// number, a date or a text the spreadsheet can sort and sum.
type cell struct {
	kind cellKind
	text string
	list []string
	num  float64
	day  int // yyyymmdd
	time time.Time
}

type cellKind uint8

const (
	cEmpty   cellKind = iota
	cText             // text
	cList             // several labels: ", " between them in CSV, one a line in XLSX
	cInt              // a count
	cDecimal          // hours, scores
	cPercent          // a fraction 0..1 shown as a percentage
	cDay              // a calendar day
	cTime             // a date and time (in the export's time zone)
)

func textCell(s string) cell {
	if s == "" {
		return cell{}
	}
	return cell{kind: cText, text: s}
}

func listCell(l []string) cell {
	if len(l) == 0 {
		return cell{}
	}
	return cell{kind: cList, list: l}
}

func intCell(n int) cell { return cell{kind: cInt, num: float64(n)} }

func decimalCell(v float64) cell { return cell{kind: cDecimal, num: v} }

func percentCell(v float64) cell { return cell{kind: cPercent, num: v} }

func dayCell(d int) cell {
	if d <= 0 {
		return cell{}
	}
	return cell{kind: cDay, day: d}
}

func timeCell(t time.Time) cell {
	if t.IsZero() {
		return cell{}
	}
	return cell{kind: cTime, time: t}
}

// csv writes c as a CSV cell in French: a decimal comma, « 10,6 % »,
// JJ/MM/AAAA and JJ/MM/AAAA HH:MM, labels joined by ", ". Counts have no
// thousands separator, which a spreadsheet could read as text.
func (c cell) csv(loc *time.Location) string {
	switch c.kind {
	case cText:
		return c.text
	case cList:
		return strings.Join(c.list, ", ")
	case cInt:
		return strconv.FormatInt(int64(c.num), 10)
	case cDecimal:
		return decimal(c.num)
	case cPercent:
		return percent(c.num)
	case cDay:
		return FormatDay(c.day)
	case cTime:
		return c.time.In(loc).Format("02/01/2006 15:04")
	}
	return ""
}

// decimal writes v with a decimal comma, as French spreadsheets read it.
func decimal(v float64) string {
	return strings.Replace(strconv.FormatFloat(v, 'f', -1, 64), ".", ",", 1)
}

// percent writes a fraction as a French percentage with one decimal:
// 0.1061 is « 10,6 % ».
func percent(v float64) string {
	return strings.Replace(strconv.FormatFloat(v*100, 'f', 1, 64), ".", ",", 1) + " %"
}
