package omega

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/filelock"
)

// Metric is one measurement a [Kernel] reports (SPEC 8). Names follow the
// original system where it had one:
//
//	ingress.events            events given to one Submit
//	ingress.malformed         a Submit refused for a malformed event
//	sequencer.accepted        events of one Submit logged
//	sequencer.drop            an exact redelivery dropped
//	sequencer.expired         an event released after MaxPendingAge
//	reconcile.batch_size      distinct contents of a decided batch
//	reconcile.obstruction     an obstruction, metadata "predicate", "batch"
//	reconcile.frontier        after a merge, the highest lamport accepted
//	                          since open; metadata "batch", "prev" (the
//	                          frontier before) and "min_lamport" (the
//	                          batch's lowest)
//	reconcile.safe_mode_merge_blocked  events of a merge held back
//	cert.persist              a certificate appended and synced
//	cert.persist_fail         a certificate that could not be
//	                          appended or synced
//	log.fsync                 an fsync of the event log
//	log.torn_tail             bytes of a torn tail cut off at open
//	log.resumed_damage        damage to a segment a snapshot covers, found
//	                          at open, that safe mode was resumed from;
//	                          metadata "segment", "offset"
//	snapshot.write, snapshot.fail, snapshot.unreadable
//	kernel.safe_mode          safe mode entered, metadata "reason"
//	latency.submit_to_durable_us      per Submit
//	latency.submit_to_certificate_us  per batch, from its first event;
//	                          metadata "batch", "batch_size"
type Metric struct {
	Name  string
	Value float64
	// Metadata is nil or the metric's labels; the sink must not keep it
	// past the call.
	Metadata map[string]string
}

// MetricsSink receives a kernel's metrics. The kernel calls Record from
// several goroutines at once and waits for it, so Record must be safe for
// concurrent use and quick.
type MetricsSink interface {
	Record(m Metric)
}

// JSONLSink is a [MetricsSink] that writes one JSON object per metric and a
// newline: {"seq_id","metric","value","metadata"}, with seq_id counting
// from 1 in the order the lines are written, as the original system's
// metrics files do. It is safe for concurrent use.
type JSONLSink struct {
	mu  sync.Mutex
	w   *bufio.Writer
	seq uint64
	err error
	buf []byte
}

// NewJSONLSink returns a sink writing to w, buffered: call Flush to write
// out what is buffered.
func NewJSONLSink(w io.Writer) *JSONLSink { return &JSONLSink{w: bufio.NewWriter(w)} }

// metricsTail is how much of the end of a metrics file openMetricsFile
// reads to find the last seq_id: many times the longest line the kernel
// writes.
const metricsTail = 64 << 10

// openMetricsFile opens the metrics file name for appending, and returns
// it with a JSONLSink on it whose seq_ids go on from the last line's, so
// that they stay monotonic over restarts. A last line cut short by a crash
// is ended with a newline first, to stay a line of its own; if no line of
// the file's last metricsTail bytes has a seq_id, the count starts at 1.
func openMetricsFile(fsys fileSystem, name string) (io.Closer, *JSONLSink, error) {
	f, err := fsys.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	// One appender at a time, as for every file omega appends to: two
	// kernels sharing the file would interleave their seq_ids.
	if err := filelock.Lock(f, name); err != nil {
		f.Close()
		return nil, nil, err
	}
	fail := func(err error) (io.Closer, *JSONLSink, error) {
		filelock.Unlock(f)
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	n := min(fi.Size(), metricsTail)
	tail := make([]byte, n)
	if _, err := f.ReadAt(tail, fi.Size()-n); err != nil && err != io.EOF {
		return fail(err)
	}
	if n > 0 && tail[n-1] != '\n' {
		if _, err := f.Write([]byte{'\n'}); err != nil {
			return fail(err)
		}
	}
	s := NewJSONLSink(f)
	s.seq = lastSeqID(tail)
	return lockedFile{f}, s, nil
}

// lockedFile is a file Close unlocks, then closes.
type lockedFile struct{ framelog.File }

func (f lockedFile) Close() error {
	filelock.Unlock(f.File)
	return f.File.Close()
}

// lastSeqID returns the seq_id of the last line of tail that starts as a
// JSONLSink line does, or 0 when none does. The last line may be torn (no
// newline): its seq_id counts when it is whole, so that none is written
// twice.
func lastSeqID(tail []byte) uint64 {
	const prefix = `{"seq_id":`
	end := len(tail)
	for end >= 0 {
		start := bytes.LastIndexByte(tail[:end], '\n') + 1
		line := tail[start:end]
		end = start - 1
		digits, ok := bytes.CutPrefix(line, []byte(prefix))
		if !ok {
			continue
		}
		i := 0
		for i < len(digits) && '0' <= digits[i] && digits[i] <= '9' {
			i++
		}
		if seq, err := strconv.ParseUint(string(digits[:i]), 10, 64); err == nil && i < len(digits) && digits[i] == ',' {
			return seq
		}
	}
	return 0
}

// Record writes m as the next line. A write error is kept and returned by
// Flush; later metrics are then dropped.
func (s *JSONLSink) Record(m Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.seq++
	b := append(s.buf[:0], `{"seq_id":`...)
	b = strconv.AppendUint(b, s.seq, 10)
	b = append(b, `,"metric":`...)
	name, _ := json.Marshal(m.Name) // a JSON string, which strconv's Go quoting is not
	b = append(b, name...)
	b = append(b, `,"value":`...)
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendFloat(b, m.Value, 'g', -1, 64)
	}
	b = append(b, `,"metadata":`...)
	if m.Metadata == nil {
		b = append(b, "{}"...)
	} else {
		md, _ := json.Marshal(m.Metadata) // sorted keys: the same map gives the same line
		b = append(b, md...)
	}
	b = append(b, "}\n"...)
	s.buf = b
	_, s.err = s.w.Write(b)
}

// Flush writes out the buffered lines and returns the first write error.
func (s *JSONLSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = s.w.Flush()
	}
	return s.err
}

// Latency summarizes a latency histogram: how many samples, and quantiles
// read from log-linear buckets (at most 1/16 above the true value).
type Latency struct {
	Count              uint64
	P50, P90, P99, Max time.Duration
}

// histogram counts durations in log-linear buckets: 16 per power of two,
// so a quantile is read within 1/16 of its value. It is safe for
// concurrent use; adding a sample takes no lock.
type histogram struct {
	buckets [64 * histSub]atomic.Uint64
	count   atomic.Uint64
	max     atomic.Int64
}

const histSubBits = 4
const histSub = 1 << histSubBits

func histBucket(ns int64) int {
	if ns < histSub {
		return int(max(ns, 0))
	}
	u := uint64(ns)
	e := bits.Len64(u) - 1 - histSubBits // u >> e is in [16, 32)
	return (e+1)*histSub + int(u>>e) - histSub
}

// histUpper returns the largest duration of bucket i.
func histUpper(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	m := int64(i%histSub + histSub)
	return (m+1)<<e - 1
}

func (h *histogram) add(d time.Duration) {
	ns := int64(d)
	h.buckets[histBucket(ns)].Add(1)
	h.count.Add(1)
	for {
		m := h.max.Load()
		if ns <= m || h.max.CompareAndSwap(m, ns) {
			break
		}
	}
}

func (h *histogram) summary() Latency {
	var counts [len(h.buckets)]uint64
	var n uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		n += counts[i]
	}
	l := Latency{Count: n, Max: time.Duration(h.max.Load())}
	q := func(num, den uint64) time.Duration {
		rank := (n*num + den - 1) / den // the sample at this rank, counting from 1
		var seen uint64
		for i, c := range counts {
			if seen += c; seen >= rank && c > 0 {
				return time.Duration(min(histUpper(i), int64(l.Max)))
			}
		}
		return l.Max
	}
	if n > 0 {
		l.P50, l.P90, l.P99 = q(50, 100), q(90, 100), q(99, 100)
	}
	return l
}
