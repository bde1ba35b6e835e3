package main

import (
	"bytes"
	"encoding/json"
	"numeribus/internal/benchreport"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBenchQuick runs the whole program on tiny sizes (the agent binary is
// built too) and checks the JSON it writes.
func TestBenchQuick(t *testing.T) {
	out := filepath.Join(t.TempDir(), "sub", "results.json")
	var stdout bytes.Buffer
	if err := run([]string{"-quick", "-out", out}, &stdout); err != nil {
		t.Fatalf("run: %v\n%s", err, stdout.String())
	}
	t.Logf("\n%s", stdout.String())

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res benchreport.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("results do not parse: %v\n%s", err, b)
	}
	if res.Machine.NumCPU < 1 || res.Machine.GOOS == "" || res.Machine.GOARCH == "" || !strings.HasPrefix(res.Machine.GoVersion, "go") {
		t.Errorf("machine: %+v", res.Machine)
	}
	if _, err := time.Parse(time.RFC3339, res.When); err != nil {
		t.Errorf("when %q: %v", res.When, err)
	}
	var params struct{ Params Params }
	if err := json.Unmarshal(b, &params); err != nil {
		t.Fatal(err)
	}
	if p := params.Params; p.N != 300 || p.Saves != 50 || !p.Quick || len(p.Lookup) != 1 || p.Lookup[0] != 300 {
		t.Errorf("params: %+v", p)
	}
	got := map[string]benchreport.Figure{}
	for _, f := range res.Figures {
		if _, dup := got[f.Name]; dup {
			t.Errorf("figure %s listed twice", f.Name)
		}
		got[f.Name] = f
	}
	want := []string{
		"save_p50_encrypted_ms", "save_p99_encrypted_ms", "save_max_encrypted_ms",
		"save_p50_plain_ms", "save_p99_plain_ms",
		"save_overhead_p50_ratio", "save_overhead_p99_ratio",
		"import_records_per_s", "raw_insert_rows_per_s", "import_vs_raw_ratio",
		"raw_insert_with_changes_records_per_s", "import_vs_raw_one_row_ratio",
		"raw_insert_single_one_tx_records_per_s", "raw_insert_single_run_tx_records_per_s",
		"raw_insert_multi64_run_tx_records_per_s", "raw_insert_multi512_run_tx_records_per_s",
		"raw_insert_multi64_one_tx_records_per_s", "raw_insert_multi512_one_tx_records_per_s",
		"import_ms", "import_decode_alone_ms", "import_decode_us_per_record",
		"import_nonempty_records_per_s", "import_nonempty_vs_raw_ratio",
		"db_bytes_per_record", "json_bytes_per_record",
		"record_body_avg_bytes", "change_body_avg_bytes",
		"unlock_ms", "unlock_warm_ms", "cold_start_status_ms", "cold_start_list_ms",
		"open_quick_check_ms", "backup_ms", "backup_bytes_ratio",
		"page_ms_300", "page_max_ms_300", "page_first_ms_300", "search_ms_300", "search_max_ms_300",
		"ui_floor_ms_300", "raw_scan_ms_300", "raw_person_rows_us_300", "unlock_ui_ms_300",
		"search_floor_memory_us_300", "page_after_other_process_ms_300", "unlock_no_index_ms_300",
		"index_build_ms_300", "unlock_with_index_ms_300", "index_heap_mb_300",
	}
	targets := map[string]bool{"save_p99_encrypted_ms": true, "import_vs_raw_ratio": true, "unlock_ms": true,
		"page_ms_300": true, "search_ms_300": true}
	for _, name := range want {
		f, ok := got[name]
		if !ok {
			t.Errorf("figure %s missing", name)
			continue
		}
		if !(f.Value > 0) {
			t.Errorf("figure %s = %v, want > 0", name, f.Value)
		}
		if f.Unit == "" {
			t.Errorf("figure %s has no unit", name)
		}
		if targets[name] != (f.Target != "" && f.Met != nil) {
			t.Errorf("figure %s: target %q met %v", name, f.Target, f.Met)
		}
		if !strings.Contains(stdout.String(), f.Label) {
			t.Errorf("figure %s (%q) not in the table", name, f.Label)
		}
	}
	// The limit is the fastest variant, not the import's own shape.
	best := 0.0
	for _, v := range rawVariants {
		best = max(best, got["raw_insert_"+v.name+"_records_per_s"].Value)
	}
	if f := got["raw_insert_with_changes_records_per_s"]; f.Value != best {
		t.Errorf("raw insert limit %v, the fastest variant %v", f.Value, best)
	}
	if len(got) != len(want) {
		t.Errorf("%d figures, want %d", len(got), len(want))
	}
}
