// Package analytics computes the advisory analytics of SPEC 8 (the
// original system's Layer D) over a window of a Kernel's metrics: the jitter
// spectrum of commit latency, clusters of obstructions, the drift of late
// events behind the lamport frontier, and the latency surface over batch
// sizes.
//
// Everything is integer arithmetic: metric values are read as integers,
// the spectrum uses a fixed-point (Q14) cosine table written out in this
// file, and means, quantiles and slopes round the same way everywhere. So
// a report is the same bytes on every platform and every run, and golden
// files can pin it. The analytics are advisory: they describe a window,
// and nothing omega decides depends on them.
//
// A [Window] is a [omega.MetricsSink] that keeps the last samples a kernel
// reported; [ReadJSONL] reads the lines an [omega.JSONLSink] wrote. Either
// gives samples for [Analyze].
package analytics

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"sync"

	"github.com/omega-sheaf/omega"
)

// Sample is one metric in a window, its value as an integer (omega's
// metrics are counts, lamports and microseconds; a fraction is truncated
// toward zero, a value outside int64 is clamped).
type Sample struct {
	Seq      uint64
	Name     string
	Value    int64
	Metadata map[string]string
}

func toInt(v float64) int64 {
	switch {
	case math.IsNaN(v):
		return 0
	case v >= math.MaxInt64:
		return math.MaxInt64
	case v <= math.MinInt64:
		return math.MinInt64
	}
	return int64(v)
}

// Window is a MetricsSink that keeps the last samples it was given, for
// Analyze. It is safe for concurrent use.
type Window struct {
	mu   sync.Mutex
	buf  []Sample
	next int
	full bool
	seq  uint64
}

// NewWindow returns a window of the last n samples (n < 1 means 1).
func NewWindow(n int) *Window { return &Window{buf: make([]Sample, max(n, 1))} }

// Record keeps m, numbered after the samples before it.
func (w *Window) Record(m omega.Metric) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	var md map[string]string
	if len(m.Metadata) > 0 {
		md = make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			md[k] = v
		}
	}
	w.buf[w.next] = Sample{Seq: w.seq, Name: m.Name, Value: toInt(m.Value), Metadata: md}
	if w.next++; w.next == len(w.buf) {
		w.next, w.full = 0, true
	}
}

// Samples returns the samples the window holds, oldest first.
func (w *Window) Samples() []Sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.full {
		return slices.Clone(w.buf[:w.next])
	}
	return append(slices.Clone(w.buf[w.next:]), w.buf[:w.next]...)
}

// ReadJSONL reads the lines of an omega.JSONLSink: {"seq_id","metric",
// "value","metadata"}. A line that does not parse is an error naming it.
func ReadJSONL(r io.Reader) ([]Sample, error) {
	var out []Sample
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		var l struct {
			SeqID    uint64            `json:"seq_id"`
			Metric   string            `json:"metric"`
			Value    *json.Number      `json:"value"`
			Metadata map[string]string `json:"metadata"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return out, fmt.Errorf("analytics: metrics line %d: %w", n, err)
		}
		s := Sample{Seq: l.SeqID, Name: l.Metric}
		if len(l.Metadata) > 0 {
			s.Metadata = l.Metadata
		}
		if l.Value != nil {
			if v, err := l.Value.Int64(); err == nil {
				s.Value = v
			} else if f, err := l.Value.Float64(); err == nil {
				s.Value = toInt(f)
			} else {
				return out, fmt.Errorf("analytics: metrics line %d: value %s", n, *l.Value)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// Options configures Analyze. A nil *Options and zero fields mean the
// defaults.
type Options struct {
	// ClusterGap is the most batch ids between two obstructions of one
	// predicate in one cluster. 0 means 8.
	ClusterGap uint64
	// MinCluster is the fewest obstructions a reported cluster has.
	// 0 means 2.
	MinCluster int
}

// Report is what Analyze finds in a window. Every field is an integer.
type Report struct {
	Samples  int                  `json:"samples"`
	Jitter   JitterSpectrum       `json:"jitter_spectrum"`
	Clusters []ObstructionCluster `json:"obstruction_clusters"`
	Drift    FrontierDrift        `json:"frontier_drift"`
	Surface  LatencySurface       `json:"latency_surface"`
}

// Analyze computes the report of samples, in window order.
func Analyze(samples []Sample, opts *Options) Report {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ClusterGap == 0 {
		o.ClusterGap = 8
	}
	if o.MinCluster == 0 {
		o.MinCluster = 2
	}
	var lat []int64
	for _, s := range samples {
		if s.Name == "latency.submit_to_durable_us" {
			lat = append(lat, s.Value)
		}
	}
	return Report{
		Samples:  len(samples),
		Jitter:   Jitter(lat),
		Clusters: Clusters(samples, o.ClusterGap, o.MinCluster),
		Drift:    Drift(samples),
		Surface:  Surface(samples),
	}
}

// SpectrumSize is the number of samples the jitter spectrum transforms.
const SpectrumSize = 64

// JitterSpectrum is the magnitude spectrum of the deviations of the last
// SpectrumSize latencies from their mean: a periodic stall (a timer, a
// neighbour's fsync) every p samples shows as a strong bin at N/p, and,
// being a spike rather than a sine, as strong bins at its multiples too
// (its harmonics).
type JitterSpectrum struct {
	N    int     `json:"n"`       // latencies transformed: SpectrumSize, or 0 with fewer
	Mean int64   `json:"mean_us"` // their mean, rounded toward minus infinity
	Bins []int64 `json:"bins"`    // |X_k| for k = 0..N/2, in µs, X_0 = 0
	// Peak is the lowest bin k >= 1 whose magnitude is at least 3/4 of
	// the largest (0 when every bin is 0): for a stall whose period p
	// divides N, its fundamental N/p, where the largest bin may be any of
	// its harmonics. When p does not divide N, the fundamental spreads
	// over the two bins beside N/p, and both may fall below a harmonic
	// that lands on a bin, which Peak then names: read it as a hint, and
	// the Bins for the rest. PeriodQ8 is the period Peak stands for, N/k
	// samples, in 1/256 of a sample.
	Peak     int   `json:"peak_bin"`
	PeriodQ8 int64 `json:"period_q8"`
}

// cosQ14 is round(16384 cos(2 pi k / 64)) for k = 0..16: a quarter wave
// from which every twiddle of the 64-point transform follows. Written out,
// not computed, so no platform's floating point reaches a report.
var cosQ14 = [17]int64{16384, 16305, 16069, 15679, 15137, 14449, 13623, 12665, 11585, 10394, 9102, 7723, 6270, 4756, 3196, 1606, 0}

// cos64 returns 16384 cos(2 pi k / 64) for any k.
func cos64(k int) int64 {
	k &= 63
	switch {
	case k <= 16:
		return cosQ14[k]
	case k <= 32:
		return -cosQ14[32-k]
	case k <= 48:
		return -cosQ14[k-32]
	}
	return cosQ14[64-k]
}

func sin64(k int) int64 { return cos64(k - 16) }

// Jitter computes the spectrum of the last SpectrumSize of latencies.
// Deviations are clamped to +-2^24 µs (about 17 s), which bounds every
// intermediate value well inside int64.
func Jitter(latencies []int64) JitterSpectrum {
	if len(latencies) < SpectrumSize {
		return JitterSpectrum{}
	}
	x := latencies[len(latencies)-SpectrumSize:]
	var sum int64
	for _, v := range x {
		sum += clamp(v, -1<<40, 1<<40)
	}
	mean := floorDiv(sum, SpectrumSize)
	var d [SpectrumSize]int64
	for i, v := range x {
		d[i] = clamp(clamp(v, -1<<40, 1<<40)-mean, -1<<24, 1<<24)
	}
	js := JitterSpectrum{N: SpectrumSize, Mean: mean, Bins: make([]int64, SpectrumSize/2+1)}
	for k := 1; k <= SpectrumSize/2; k++ {
		var re, im int64
		for i, v := range d {
			re += v * cos64(i*k)
			im -= v * sin64(i*k)
		}
		re, im = re>>14, im>>14
		js.Bins[k] = int64(isqrt(uint64(re*re) + uint64(im*im)))
	}
	top := slices.Max(js.Bins)
	if top == 0 {
		return js // no deviation at all: no peak
	}
	for k := 1; ; k++ {
		if 4*js.Bins[k] >= 3*top {
			js.Peak = k
			break
		}
	}
	js.PeriodQ8 = SpectrumSize * 256 / int64(js.Peak)
	return js
}

// ObstructionCluster is a run of obstructions by one predicate, each
// within the gap of batch ids of the one before it.
type ObstructionCluster struct {
	Predicate  uint32 `json:"predicate"`
	FirstBatch uint64 `json:"first_batch"`
	LastBatch  uint64 `json:"last_batch"`
	Count      int    `json:"count"`
	// PerMille is Count per thousand batches of the cluster's span,
	// rounded down.
	PerMille uint64 `json:"per_mille"`
}

// Clusters finds the clusters of the reconcile.obstruction samples
// (metadata "predicate" and "batch"), ordered by predicate, then first
// batch. Samples without both are skipped.
func Clusters(samples []Sample, gap uint64, minCount int) []ObstructionCluster {
	type ob struct {
		p     uint32
		batch uint64
	}
	var obs []ob
	for _, s := range samples {
		if s.Name != "reconcile.obstruction" {
			continue
		}
		p, err1 := strconv.ParseUint(s.Metadata["predicate"], 10, 32)
		b, err2 := strconv.ParseUint(s.Metadata["batch"], 10, 64)
		if err1 == nil && err2 == nil {
			obs = append(obs, ob{uint32(p), b})
		}
	}
	slices.SortFunc(obs, func(a, b ob) int {
		if c := cmp.Compare(a.p, b.p); c != 0 {
			return c
		}
		return cmp.Compare(a.batch, b.batch)
	})
	out := []ObstructionCluster{}
	emit := func(c ObstructionCluster) {
		if c.Count >= minCount {
			c.PerMille = uint64(c.Count) * 1000 / (c.LastBatch - c.FirstBatch + 1)
			out = append(out, c)
		}
	}
	var cur ObstructionCluster
	for i, o := range obs {
		if i > 0 && o.p == cur.Predicate && o.batch-cur.LastBatch <= gap {
			cur.LastBatch = o.batch
			cur.Count++
			continue
		}
		if i > 0 {
			emit(cur)
		}
		cur = ObstructionCluster{Predicate: o.p, FirstBatch: o.batch, LastBatch: o.batch, Count: 1}
	}
	if len(obs) > 0 {
		emit(cur)
	}
	return out
}

// FrontierDrift describes how far behind the lamport frontier (the highest
// lamport accepted before it) each merged batch's oldest event was.
type FrontierDrift struct {
	Merges int   `json:"merges"`
	Mean   int64 `json:"mean_lag"`
	P50    int64 `json:"p50_lag"`
	P99    int64 `json:"p99_lag"`
	Max    int64 `json:"max_lag"`
	// SlopeQ16 is the least-squares slope of the lag over the merges'
	// order, in lamports per merge times 65536, rounded toward minus
	// infinity: positive when events arrive ever later behind the
	// frontier.
	SlopeQ16 int64 `json:"slope_q16"`
}

// Drift computes the drift from the reconcile.frontier samples (metadata
// "prev" and "min_lamport").
func Drift(samples []Sample) FrontierDrift {
	var lags []int64
	for _, s := range samples {
		if s.Name != "reconcile.frontier" {
			continue
		}
		prev, err1 := strconv.ParseUint(s.Metadata["prev"], 10, 63)
		lo, err2 := strconv.ParseUint(s.Metadata["min_lamport"], 10, 63)
		if err1 != nil || err2 != nil {
			continue
		}
		lags = append(lags, max(int64(prev)-int64(lo), 0))
	}
	fd := FrontierDrift{Merges: len(lags)}
	if len(lags) == 0 {
		return fd
	}
	// Lags are clamped to 2^40; the sums and the slope are computed with
	// exact integers (math/big), which no platform rounds differently.
	n := int64(len(lags))
	var sum int64
	for i, l := range lags {
		l = min(l, 1<<40)
		lags[i] = l
		sum += l // at most 2^40 per lag: a window of under 2^23 lags fits
	}
	fd.Mean = floorDiv(sum, n)
	if n > 1 {
		// slope = (n sxy - sx sy) / (n sxx - sx^2), x = 0..n-1.
		var sx, sxx, sy, sxy big.Int
		for i, l := range lags {
			x := big.NewInt(int64(i))
			y := big.NewInt(l)
			sx.Add(&sx, x)
			sxx.Add(&sxx, new(big.Int).Mul(x, x))
			sy.Add(&sy, y)
			sxy.Add(&sxy, new(big.Int).Mul(x, y))
		}
		bn := big.NewInt(n)
		num := new(big.Int).Mul(bn, &sxy)
		num.Sub(num, new(big.Int).Mul(&sx, &sy))
		num.Lsh(num, 16)
		den := new(big.Int).Mul(bn, &sxx)
		den.Sub(den, new(big.Int).Mul(&sx, &sx))
		q := new(big.Int).Div(num, den) // Euclidean, den > 0: rounds toward minus infinity
		switch {
		case q.IsInt64():
			fd.SlopeQ16 = q.Int64()
		case q.Sign() < 0:
			fd.SlopeQ16 = math.MinInt64
		default:
			fd.SlopeQ16 = math.MaxInt64
		}
	}
	sorted := slices.Clone(lags)
	slices.Sort(sorted)
	fd.P50 = quantile(sorted, 50)
	fd.P99 = quantile(sorted, 99)
	fd.Max = sorted[len(sorted)-1]
	return fd
}

// LatencySurface counts batches by size and by submit-to-certificate
// latency, both on log2 scales: Cells[r][c] is the number of batches of
// SizeBuckets[r] whose latency was below 2^(c+1) µs (at least 2^c, but for
// c = 0).
type LatencySurface struct {
	SizeBuckets []string  `json:"size_buckets"`
	Cells       [][]int64 `json:"cells"`
	// P50 and P99 per size bucket: the upper bound of the latency bucket
	// the quantile falls in, in µs; 0 for an empty row.
	P50 []int64 `json:"p50_us"`
	P99 []int64 `json:"p99_us"`
}

const surfaceCols = 25 // up to 2^25 µs, about 33 s; slower goes in the last

// Surface computes the surface from the latency.submit_to_certificate_us
// samples (metadata "batch_size").
func Surface(samples []Sample) LatencySurface {
	const rows = 8 // sizes 1, 2-3, 4-7, ..., 64-127, 128+
	ls := LatencySurface{Cells: make([][]int64, rows), P50: make([]int64, rows), P99: make([]int64, rows)}
	for r := range rows {
		lo, hi := 1<<r, 1<<(r+1)-1
		switch {
		case r == 0:
			ls.SizeBuckets = append(ls.SizeBuckets, "1")
		case r == rows-1:
			ls.SizeBuckets = append(ls.SizeBuckets, fmt.Sprintf("%d+", lo))
		default:
			ls.SizeBuckets = append(ls.SizeBuckets, fmt.Sprintf("%d-%d", lo, hi))
		}
		ls.Cells[r] = make([]int64, surfaceCols)
	}
	for _, s := range samples {
		if s.Name != "latency.submit_to_certificate_us" {
			continue
		}
		size, err := strconv.ParseUint(s.Metadata["batch_size"], 10, 32)
		if err != nil || size == 0 {
			continue
		}
		r := min(bits.Len64(size)-1, rows-1)
		c := 0
		if s.Value > 1 {
			c = min(bits.Len64(uint64(s.Value))-1, surfaceCols-1)
		}
		ls.Cells[r][c]++
	}
	for r, row := range ls.Cells {
		var n int64
		for _, v := range row {
			n += v
		}
		if n == 0 {
			continue
		}
		at := func(pct int64) int64 {
			rank := (n*pct + 99) / 100
			var seen int64
			for c, v := range row {
				if seen += v; seen >= rank {
					return 1<<(c+1) - 1
				}
			}
			return 1<<surfaceCols - 1
		}
		ls.P50[r], ls.P99[r] = at(50), at(99)
	}
	return ls
}

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// floorDiv divides rounding toward minus infinity; d > 0.
func floorDiv(a, d int64) int64 {
	q := a / d
	if a%d != 0 && a < 0 {
		q--
	}
	return q
}

// quantile returns the pct-th percentile of sorted (nearest rank).
func quantile(sorted []int64, pct int) int64 {
	rank := (len(sorted)*pct + 99) / 100
	return sorted[max(rank, 1)-1]
}

// isqrt returns floor(sqrt(x)).
func isqrt(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	r := uint64(1) << ((bits.Len64(x) + 1) / 2)
	for {
		s := (r + x/r) / 2
		if s >= r {
			return r
		}
		r = s
	}
}
