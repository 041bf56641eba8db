package omega

import (
	"math/bits"
	"slices"
	"time"
)

// paceSpan is how many elements a paced loop handles between two calls of
// its pace function.
const paceSpan = 1 << 12

// pacer spreads background work (a snapshot) in time: after each stretch
// of about paceWork it sleeps as long as it worked, so that the work takes
// at most half a core, and takes twice as long. A snapshot of a long
// history costs a core for a while; taken whole, it would stall the
// Submits and certificates running beside it for as long, and make their
// latency's tail. Once stop is closed (the kernel is closing), it no
// longer sleeps.
type pacer struct {
	since time.Time
	stop  <-chan struct{}
	timer *time.Timer
}

const paceWork = 500 * time.Microsecond

func newPacer(stop <-chan struct{}) *pacer { return &pacer{since: time.Now(), stop: stop} }

// pace sleeps when the work since the last sleep is due for one.
func (p *pacer) pace() {
	d := time.Since(p.since)
	if d < paceWork {
		return
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-p.timer.C:
	case <-p.stop:
		p.timer.Stop()
	}
	p.since = time.Now()
}

// sortPaced sorts xs by cmp, as slices.SortFunc does (not stably), calling
// pace between steps of at most about paceSpan elements' work. It sorts
// in place: a quicksort whose partitions are paced, down to ranges of
// paceSpan that slices.SortFunc sorts. A range partitioned badly too many
// times is sorted by slices.SortFunc in one step, so that no input makes
// it quadratic.
func sortPaced[E any](xs []E, cmp func(a, b E) int, pace func()) {
	type span struct{ lo, hi, depth int }
	stack := []span{{0, len(xs), 2 * bits.Len(uint(len(xs)))}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		r := xs[s.lo:s.hi]
		if len(r) <= paceSpan || s.depth == 0 {
			slices.SortFunc(r, cmp)
			pace()
			continue
		}
		p := partition(r, cmp)
		pace()
		stack = append(stack, span{s.lo, s.lo + p, s.depth - 1}, span{s.lo + p + 1, s.hi, s.depth - 1})
	}
}

// partition moves a pivot of r (the median of its first, middle and last
// elements) to its sorted place and returns it: no element before it
// compares greater, none after it less. Elements equal to the pivot stop
// both scans, so that many equal elements still split evenly. r has at
// least 3 elements.
func partition[E any](r []E, cmp func(a, b E) int) int {
	hi := len(r) - 1
	m := hi / 2
	if cmp(r[m], r[0]) < 0 {
		r[m], r[0] = r[0], r[m]
	}
	if cmp(r[hi], r[0]) < 0 {
		r[hi], r[0] = r[0], r[hi]
	}
	if cmp(r[hi], r[m]) < 0 {
		r[hi], r[m] = r[m], r[hi]
	}
	// Now r[0] <= r[m] <= r[hi]: r[m], the median, is the pivot, moved to
	// r[0]; r[hi] stops the scan from the left.
	r[0], r[m] = r[m], r[0]
	v := r[0]
	i, j := 0, len(r)
	for {
		for i++; i < hi && cmp(r[i], v) < 0; i++ {
		}
		for j--; cmp(v, r[j]) < 0; j-- {
		}
		if i >= j {
			break
		}
		r[i], r[j] = r[j], r[i]
	}
	r[0], r[j] = r[j], r[0]
	return j
}
