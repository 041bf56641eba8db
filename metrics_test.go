package omega

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestJSONLSink(t *testing.T) {
	var buf bytes.Buffer
	s := NewJSONLSink(&buf)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				s.Record(Metric{Name: "m", Value: float64(g*100 + i), Metadata: map[string]string{"b": "2", "a": "1"}})
			}
		})
	}
	wg.Wait()
	s.Record(Metric{Name: "nan", Value: math.NaN()})
	s.Record(Metric{Name: "ctl\x00\x7f\"\\", Value: 1}) // JSON's escapes, not Go's
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	seq := uint64(0)
	for sc.Scan() {
		var line struct {
			SeqID    uint64            `json:"seq_id"`
			Metric   string            `json:"metric"`
			Value    *float64          `json:"value"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		seq++
		if line.SeqID != seq {
			t.Fatalf("seq_id %d, want %d", line.SeqID, seq)
		}
		if line.Metric == "m" && (line.Metadata["a"] != "1" || !bytes.Contains(sc.Bytes(), []byte(`"metadata":{"a":"1","b":"2"}`))) {
			t.Errorf("line %q: metadata not in key order", sc.Text())
		}
		if seq == 402 && line.Metric != "ctl\x00\x7f\"\\" {
			t.Errorf("name read back as %q", line.Metric)
		}
		if line.Metric == "nan" && line.Value != nil {
			t.Errorf("NaN written as %v, want null", *line.Value)
		}
	}
	if seq != 402 {
		t.Errorf("%d lines, want 402", seq)
	}
}

func TestHistogramBuckets(t *testing.T) {
	for _, ns := range []int64{0, 1, 15, 16, 17, 31, 32, 33, 1000, 999_999, 1 << 40, math.MaxInt64} {
		b := histBucket(ns)
		if up := histUpper(b); up < ns || (ns >= histSub && float64(up-ns) > float64(ns)/histSub) {
			t.Errorf("histBucket(%d) = %d, whose upper bound %d is not within 1/16 above", ns, b, up)
		}
		if b > 0 && histUpper(b-1) >= ns {
			t.Errorf("histBucket(%d) = %d, but bucket %d already reaches %d", ns, b, b-1, histUpper(b-1))
		}
	}
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	l := h.summary()
	near := func(got, want time.Duration) bool { return got >= want && got <= want+want/16 }
	if l.Count != 1000 || !near(l.P50, 500*time.Microsecond) || !near(l.P99, 990*time.Microsecond) || l.Max != time.Millisecond {
		t.Errorf("summary = %+v", l)
	}
}

// TestKernelMetrics checks the original system's metric names reach the
// sink from a running kernel.
func TestKernelMetrics(t *testing.T) {
	var buf bytes.Buffer
	sink := NewJSONLSink(&buf)
	var got decisions
	cfg := kernelConfig(&got)
	cfg.Metrics = sink
	k := openKernel(t, t.TempDir(), cfg)
	if err := k.Submit(t.Context(), kev(1, 1, 1, "a"), kev(1, 1, 1, "a"), kev(2, 2, 1, "b"), kev(2, 2, 1, "c")); err != nil {
		t.Fatal(err)
	}
	bad := kev(3, 1, 2, "x")
	bad.Deps = make([]EventID, 1<<17)
	k.Submit(t.Context(), bad)
	closeKernel(t, k)
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var line struct{ Metric string }
		json.Unmarshal(sc.Bytes(), &line)
		seen[line.Metric] = true
	}
	for _, name := range []string{"ingress.events", "ingress.malformed", "sequencer.accepted", "sequencer.drop",
		"reconcile.batch_size", "reconcile.obstruction", "cert.persist", "log.fsync",
		"latency.submit_to_durable_us", "latency.submit_to_certificate_us"} {
		if !seen[name] {
			t.Errorf("no %s metric", name)
		}
	}
}

func TestLastSeqID(t *testing.T) {
	for _, c := range []struct {
		tail string
		want uint64
	}{
		{"", 0},
		{`{"seq_id":7,"metric":"a","value":1,"metadata":{}}` + "\n", 7},
		{`{"seq_id":7,"metric":"a","value":1,"metadata":{}}` + "\n" + `{"seq_id":8,"met`, 8}, // torn last line, its seq_id whole
		{`{"seq_id":7,"metric":"a","value":1,"metadata":{}}` + "\n" + `{"seq_id":8`, 7},      // its seq_id perhaps cut
		{`{"seq_id":7,"metric":"a"}` + "\n" + `{"seq_id":8,"metric":"b"}` + "\n", 8},
		{`{"seq_id":9,"metric":"a"}` + "\n" + "garbage\n\n", 9},
		{`{"seq_id":9,"metric":"a"}` + "\n" + `{"seq_id":,"metric":"b"}` + "\n", 9},
		{`{"seq_id":9,"metric":"a"}` + "\n" + `{"seq_id":99999999999999999999,"x":1}` + "\n", 9}, // overflows
		{`{"seq_id":9}` + "\n", 0},
		{`ed_id":5,"metric":"a"}` + "\n", 0}, // the first line of a tail may be cut
		{`{"seq_id":18446744073709551615,"metric":"a"}` + "\n", math.MaxUint64},
	} {
		if got := lastSeqID([]byte(c.tail)); got != c.want {
			t.Errorf("lastSeqID(%q) = %d, want %d", c.tail, got, c.want)
		}
	}
}

// TestKernelMetricsFileReopen checks the seq_ids of a kernel's metrics file
// go on over reopens, also after a line torn by a crash, and that every
// line stays a JSON object of its own.
func TestKernelMetricsFileReopen(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "m", "metrics.jsonl")
	var got decisions
	for round := range 3 {
		cfg := kernelConfig(&got)
		cfg.MetricsFile = name
		k := openKernel(t, filepath.Join(dir, "data"), cfg)
		if err := k.Submit(t.Context(), kev(uint64(round+1), 1, uint64(round+1), "a")); err != nil {
			t.Fatal(err)
		}
		closeKernel(t, k)
		if round == 1 { // a crash cut the next line short
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, `{"seq_id":%d,"metric":"cut`, bytes.Count(b, []byte("\n"))+1)
			f.Close()
		}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	want, torn, opens := uint64(0), 0, 0 // opens: one accepted Submit each
	for i, l := range lines {
		var line struct {
			SeqID  uint64 `json:"seq_id"`
			Metric string
		}
		want++
		if err := json.Unmarshal(l, &line); err != nil {
			if torn++; !bytes.HasPrefix(l, fmt.Appendf(nil, `{"seq_id":%d,`, want)) {
				t.Fatalf("line %d: %v: %q", i+1, err, l)
			}
			continue
		}
		if line.SeqID != want {
			t.Fatalf("line %d: seq_id %d, want %d", i+1, line.SeqID, want)
		}
		if line.Metric == "sequencer.accepted" {
			opens++
		}
	}
	if torn != 1 || opens != 3 || want < 9 {
		t.Errorf("%d torn lines, %d opens, %d metrics: want 1, 3 and more", torn, opens, want)
	}
}

// TestKernelMetricsFileLocked refuses a second kernel appending to the
// metrics file another one holds, and lets it in once the first closes.
func TestKernelMetricsFileLocked(t *testing.T) {
	dir := t.TempDir()
	var got decisions
	cfg := kernelConfig(&got)
	cfg.MetricsFile = filepath.Join(dir, "metrics.jsonl")
	k := openKernel(t, filepath.Join(dir, "a"), cfg)
	_, err := OpenKernel(t.Context(), filepath.Join(dir, "b"), cfg)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "metrics.jsonl") {
		t.Fatalf("a second kernel on the metrics file: %v, want ErrLocked naming the file", err)
	}
	closeKernel(t, k)
	k = openKernel(t, filepath.Join(dir, "b"), cfg)
	closeKernel(t, k)
}
