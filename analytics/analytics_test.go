package analytics

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/omega-sheaf/omega"
)

var update = flag.Bool("update-golden", false, "rewrite testdata/golden.json")

func TestCosTable(t *testing.T) {
	for k := range 64 {
		want := int64(math.Round(16384 * math.Cos(2*math.Pi*float64(k)/64)))
		if got := cos64(k); got != want {
			t.Errorf("cos64(%d) = %d, want %d", k, got, want)
		}
		wantS := int64(math.Round(16384 * math.Sin(2*math.Pi*float64(k)/64)))
		if got := sin64(k); got != wantS {
			t.Errorf("sin64(%d) = %d, want %d", k, got, wantS)
		}
	}
}

func TestJitterFindsPeriod(t *testing.T) {
	lat := make([]int64, 100)
	for i := range lat {
		lat[i] = 1000
		if i%8 == 0 {
			lat[i] += 4000 // a stall every 8 commits
		}
	}
	js := Jitter(lat)
	if js.N != 64 || js.Peak != 8 || js.PeriodQ8 != 8*256 {
		t.Errorf("Jitter = %+v, want the peak at bin 8 (period 8)", js)
	}
	if j := Jitter(lat[:63]); j.N != 0 {
		t.Errorf("Jitter of 63 samples = %+v, want nothing", j)
	}
	// A stall every 16 samples, among noise: its harmonics (bins 8, 12,
	// ... 32) are as strong as its fundamental, which is the one named.
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range lat {
		lat[i] = int64(800 + rng.IntN(400) + 3000*btoi(i%16 == 0))
	}
	if js := Jitter(lat); js.Peak != 4 || js.PeriodQ8 != 16*256 {
		t.Errorf("Jitter of a stall every 16 = peak %d, period_q8 %d: want bin 4 (period 16)", js.Peak, js.PeriodQ8)
	}
	// A sine of period 64/5 has one strong bin.
	for i := range lat {
		lat[i] = 5000 + int64(2000*math.Sin(2*math.Pi*5*float64(i)/64))
	}
	if js := Jitter(lat); js.Peak != 5 || js.Bins[5] < 4*js.Bins[4] {
		t.Errorf("Jitter of a sine in bin 5 = %+v", js)
	}
	flat := make([]int64, 64)
	if j := Jitter(flat); j.Peak != 0 || j.PeriodQ8 != 0 {
		t.Errorf("Jitter of a constant = %+v, want no peak", j)
	}
}

func TestIsqrt(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		x := rng.Uint64() >> rng.IntN(64)
		r := isqrt(x)
		hi, lo := bitsMul(r+1, r+1)
		if r*r > x || (hi == 0 && lo <= x) {
			t.Fatalf("isqrt(%d) = %d", x, r)
		}
	}
}

func bitsMul(a, b uint64) (uint64, uint64) {
	p := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
	lo := new(big.Int).And(p, new(big.Int).SetUint64(math.MaxUint64)).Uint64()
	return new(big.Int).Rsh(p, 64).Uint64(), lo
}

// TestDriftLongWindows checks the slope where int64 sums would overflow.
func TestDriftLongWindows(t *testing.T) {
	for _, c := range []struct {
		n     int
		lag   func(i int) int64
		slope int64
	}{
		{200000, func(i int) int64 { return 2 * int64(i) }, 2 << 16},
		{5000, func(int) int64 { return 1 << 40 }, 0},
	} {
		ss := make([]Sample, c.n)
		for i := range ss {
			ss[i] = frontier(1<<41, 1<<41-c.lag(i))
		}
		if d := Drift(ss); d.SlopeQ16 != c.slope {
			t.Errorf("Drift over %d merges: slope %d, want %d", c.n, d.SlopeQ16, c.slope)
		}
	}
}

func obstruction(p, batch int) Sample {
	return Sample{Name: "reconcile.obstruction", Value: 1, Metadata: map[string]string{"predicate": strconv.Itoa(p), "batch": strconv.Itoa(batch)}}
}

func TestClusters(t *testing.T) {
	ss := []Sample{obstruction(3001, 10), obstruction(3001, 12), obstruction(1002, 11), obstruction(3001, 30), obstruction(3001, 35), obstruction(3001, 100), {Name: "reconcile.obstruction"}}
	got := Clusters(ss, 8, 2)
	want := []ObstructionCluster{
		{Predicate: 3001, FirstBatch: 10, LastBatch: 12, Count: 2, PerMille: 666},
		{Predicate: 3001, FirstBatch: 30, LastBatch: 35, Count: 2, PerMille: 333},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Clusters (-want +got):\n%s", d)
	}
}

func frontier(prev, lo int64) Sample {
	return Sample{Name: "reconcile.frontier", Metadata: map[string]string{"prev": strconv.FormatInt(prev, 10), "min_lamport": strconv.FormatInt(lo, 10)}}
}

func TestDrift(t *testing.T) {
	var ss []Sample
	for i := range 10 {
		ss = append(ss, frontier(int64(1000+10*i), int64(1000+10*i-3*i))) // lag 3i
	}
	d := Drift(ss)
	want := FrontierDrift{Merges: 10, Mean: 13, P50: 12, P99: 27, Max: 27, SlopeQ16: 3 << 16}
	if d != want {
		t.Errorf("Drift = %+v, want %+v", d, want)
	}
	ss = append(ss, frontier(5, 9)) // ahead of the frontier: lag 0
	if d := Drift(ss); d.Merges != 11 || d.Max != 27 {
		t.Errorf("Drift with a batch ahead = %+v", d)
	}
}

func TestSurface(t *testing.T) {
	lat := func(size, us int) Sample {
		return Sample{Name: "latency.submit_to_certificate_us", Value: int64(us), Metadata: map[string]string{"batch_size": strconv.Itoa(size)}}
	}
	s := Surface([]Sample{lat(32, 1000), lat(32, 1500), lat(40, 5000), lat(1, 0), lat(500, 1)})
	if s.Cells[5][9] != 1 || s.Cells[5][10] != 1 || s.Cells[5][12] != 1 || s.Cells[0][0] != 1 || s.Cells[7][0] != 1 {
		t.Errorf("Surface cells = %v", s.Cells)
	}
	if s.P50[5] != 2047 || s.P99[5] != 8191 || s.SizeBuckets[5] != "32-63" || s.SizeBuckets[7] != "128+" {
		t.Errorf("Surface = %+v", s)
	}
}

// goldenWindow is a deterministic window of the metrics a kernel reports.
func goldenWindow() []Sample {
	rng := rand.New(rand.NewPCG(7, 7))
	var ss []Sample
	frontierL := 0
	for b := 1; b <= 300; b++ {
		ss = append(ss, Sample{Name: "latency.submit_to_durable_us", Value: int64(800 + rng.IntN(400) + 3000*btoi(b%16 == 0))})
		size := 1 + rng.IntN(64)
		ss = append(ss, Sample{Name: "latency.submit_to_certificate_us", Value: int64(2000 + rng.IntN(20000)), Metadata: map[string]string{"batch_size": strconv.Itoa(size), "batch": strconv.Itoa(b)}})
		// Runs of three obstructions by one predicate (clusters), and a
		// lone one now and then (no cluster).
		if b%37 < 3 || b%53 == 0 {
			p := []int{3001, 1002, 2002}[b/37%3]
			if b%53 == 0 {
				p = 2002
			}
			ss = append(ss, obstruction(p, b))
			continue
		}
		lo := frontierL + 1 - rng.IntN(5+b/20)
		ss = append(ss, frontier(int64(frontierL), int64(max(lo, 0))))
		frontierL += size
	}
	for i := range ss {
		ss[i].Seq = uint64(i + 1)
	}
	return ss
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestGolden pins the report of a fixed window byte for byte; regenerate
// with go test ./analytics -update-golden after a deliberate change.
func TestGolden(t *testing.T) {
	got, err := json.MarshalIndent(Analyze(goldenWindow(), nil), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Analyze(golden window) differs from %s:\n%s", path, cmp.Diff(string(want), string(got)))
	}
}

// TestReadJSONLRoundTrip reads back what a JSONLSink wrote: the same
// samples as a Window kept.
func TestReadJSONLRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	sink := omega.NewJSONLSink(&buf)
	w := NewWindow(1000)
	for _, s := range goldenWindow() {
		m := omega.Metric{Name: s.Name, Value: float64(s.Value), Metadata: s.Metadata}
		sink.Record(m)
		w.Record(m)
	}
	if err := sink.Flush(); err != nil {
		t.Fatal(err)
	}
	read, err := ReadJSONL(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(w.Samples(), read); d != "" {
		t.Errorf("ReadJSONL differs from the window (-window +read):\n%s", d)
	}
	if d := cmp.Diff(Analyze(goldenWindow(), nil), Analyze(read, nil)); d != "" {
		t.Errorf("reports differ:\n%s", d)
	}
	if _, err := ReadJSONL(bytes.NewReader([]byte("{\"seq_id\":1}\nnot json\n"))); err == nil {
		t.Error("ReadJSONL accepted a line that is not JSON")
	}
}

func TestWindowKeepsTheLast(t *testing.T) {
	w := NewWindow(3)
	for i := range 5 {
		w.Record(omega.Metric{Name: "m", Value: float64(i)})
	}
	ss := w.Samples()
	if len(ss) != 3 || ss[0].Value != 2 || ss[2].Value != 4 || ss[2].Seq != 5 {
		t.Errorf("Samples = %+v, want the last 3", ss)
	}
}

// TestKernelWindow runs a kernel into a Window and analyzes it.
func TestKernelWindow(t *testing.T) {
	w := NewWindow(1 << 14)
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	k, err := omega.OpenKernel(context.Background(), t.TempDir(), &omega.KernelConfig{Signer: key, Metrics: w})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(100) {
		e := omega.Event{ID: omega.ID64(i + 1), NodeID: 1, Lamport: i + 1, Payload: []byte("p"), Deps: []omega.EventID{}}
		e.PayloadHash = omega.PayloadHash(e.Payload)
		dup := omega.Event{ID: omega.ID64(i + 1), NodeID: 1, Lamport: i + 1, Payload: []byte("q"), Deps: []omega.EventID{}}
		dup.PayloadHash = omega.PayloadHash(dup.Payload)
		batch := []omega.Event{e}
		if i%10 == 5 {
			batch = append(batch, dup)
		}
		if err := k.Submit(context.Background(), batch...); err != nil {
			t.Fatal(err)
		}
	}
	if err := k.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := Analyze(w.Samples(), &Options{ClusterGap: 1000})
	if r.Jitter.N != 64 || r.Drift.Merges == 0 || len(r.Clusters) != 1 || r.Clusters[0].Count != 10 {
		t.Errorf("Analyze(kernel window) = %+v", r)
	}
	var n int64
	for _, row := range r.Surface.Cells {
		for _, v := range row {
			n += v
		}
	}
	if n == 0 {
		t.Error("an empty latency surface")
	}
}
