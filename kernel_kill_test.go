package omega

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The helper process of TestKernelKilled: it opens the kernel of the
// directory the environment names and submits from three goroutines until
// it is killed, printing "acked <id> <digest>" for each event once Submit
// has returned, that is, once the event is durable.
func TestKernelKillHelperProcess(t *testing.T) {
	dir := os.Getenv("OMEGA_TEST_KERNEL_DIR")
	if dir == "" {
		t.Skip("run by TestKernelKilled")
	}
	round, _ := strconv.ParseUint(os.Getenv("OMEGA_TEST_KERNEL_ROUND"), 10, 64)
	cfg := &KernelConfig{Signer: kernelKey, SnapshotEvery: 50, SegmentSize: 64 << 10, FlushInterval: time.Millisecond}
	k, err := OpenKernel(context.Background(), dir, cfg)
	if err != nil {
		fmt.Println("helper: failed:", err)
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for s := range uint64(3) {
		wg.Go(func() {
			for seq := uint64(1); ; seq++ {
				n := 1 + seq%4
				es := make([]Event, n)
				for i := range es {
					id := round<<40 | s<<32 | seq<<3 | uint64(i)
					es[i] = kev(id, uint32(s+1), round<<32|seq<<3|uint64(i), "k")
				}
				if err := k.Submit(context.Background(), es...); err != nil {
					fmt.Println("helper: failed:", err)
					return
				}
				mu.Lock()
				for i := range es {
					fmt.Printf("acked %d %s\n", es[i].ID.Lo, es[i].Digest())
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKernelKilled kills a process running a kernel under load at
// arbitrary moments (SIGKILL: no deferred call runs), then reopens the
// data directory: no acknowledged event is lost, the chain verifies, and
// the next process goes on.
func TestKernelKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills processes; skipped in -short runs")
	}
	dir := filepath.Join(t.TempDir(), "data")
	total := 0
	var lastHead uint64
	for round := range 8 {
		env := []string{"OMEGA_TEST_KERNEL_DIR=" + dir, "OMEGA_TEST_KERNEL_ROUND=" + strconv.Itoa(round+1)}
		acked, _, head := runUntilKilledEnv(t, "TestKernelKillHelperProcess", env, time.Duration(20+15*round)*time.Millisecond)
		if len(acked) == 0 {
			t.Fatalf("round %d: the helper acknowledged nothing:\n%s", round, head)
		}
		total += len(acked)
		logged := loggedDigests(t, dir)
		for id, d := range acked {
			if !logged[mustParseHash(t, d)] {
				t.Fatalf("round %d: acknowledged event %#x is not in the log", round, id)
			}
		}
		var ds decisions
		untraced(dir, "the killed processes' steps are not recorded")
		k := openKernel(t, dir, &KernelConfig{Signer: kernelKey, OnDecision: ds.add})
		if st := k.Status(); st.SafeMode {
			t.Fatalf("round %d: safe mode after a kill: %+v", round, st)
		}
		a := verifyKernelChain(t, k)
		if a.BatchID < lastHead {
			t.Fatalf("round %d: the chain went back from batch %d to %d", round, lastHead, a.BatchID)
		}
		if err := k.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		lastHead = verifyKernelChain(t, k).BatchID
		closeKernel(t, k)
	}
	t.Logf("%d events acknowledged across 8 killed processes; chain at batch %d", total, lastHead)
}

func mustParseHash(t *testing.T, s string) Hash {
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
