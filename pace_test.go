package omega

import (
	"cmp"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"pgregory.net/rapid"
)

// TestSortPaced checks sortPaced against slices.Sort on inputs large enough
// to be partitioned, with few distinct values, runs, and sorted or reversed
// orders, and that it paces: one call per step, never none.
func TestSortPaced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 40*paceSpan).Draw(t, "n")
		distinct := rapid.IntRange(1, 1<<30).Draw(t, "distinct")
		order := rapid.SampledFrom([]string{"random", "sorted", "reversed", "organ"}).Draw(t, "order")
		seed := rapid.Uint64().Draw(t, "seed")
		xs := make([]int, n)
		for i := range xs {
			seed = seed*6364136223846793005 + 1442695040888963407
			xs[i] = int(seed>>33) % distinct
		}
		switch order {
		case "sorted":
			slices.Sort(xs)
		case "reversed":
			slices.Sort(xs)
			slices.Reverse(xs)
		case "organ":
			slices.Sort(xs)
			slices.Reverse(xs[n/2:])
		}
		want := slices.Clone(xs)
		slices.Sort(want)
		paces := 0
		sortPaced(xs, cmp.Compare[int], func() { paces++ })
		if !slices.Equal(xs, want) {
			t.Fatalf("not sorted: %d elements, %d distinct, %s", n, distinct, order)
		}
		if paces < n/paceSpan {
			t.Fatalf("%d paces for %d elements: at least %d expected", paces, n, n/paceSpan)
		}
	})
}

// TestSortPacedAllEqual checks that equal elements, which stop both scans
// of a partition, are sorted and kept.
func TestSortPacedAllEqual(t *testing.T) {
	xs := make([]int, 40*paceSpan+1)
	sortPaced(xs, cmp.Compare[int], func() {})
	if slices.ContainsFunc(xs, func(x int) bool { return x != 0 }) {
		t.Fatal("changed an element")
	}
}

// TestPacer checks, on synctest's clock, that a pacer sleeps as long as the
// work since its last sleep once that reaches paceWork, not before, and not
// at all once its stop channel is closed.
func TestPacer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		p := newPacer(stop)
		start := time.Now()
		time.Sleep(paceWork / 2) // work
		p.pace()
		if d := time.Since(start); d != paceWork/2 {
			t.Fatalf("pace slept after %v of work, under paceWork (%v)", paceWork/2, paceWork)
		}
		time.Sleep(paceWork) // more work: 1.5 paceWork since the start
		p.pace()
		if d := time.Since(start); d != 3*paceWork {
			t.Fatalf("%v after 1.5 paceWork of work and a pace, want %v", d, 3*paceWork)
		}
		close(stop)
		time.Sleep(2 * paceWork)
		before := time.Now()
		p.pace()
		if d := time.Since(before); d != 0 {
			t.Fatalf("pace slept %v after stop was closed", d)
		}
	})
}
