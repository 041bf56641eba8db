package omega

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

var killSeed = flag.Uint64("kill.seed", 0, "TestKernelKilled: the seed of the kill delays (0: a new one each run)")

// TestKernelKilled kills a process running a kernel under load at random
// moments (SIGKILL: no deferred call runs), over many rounds on one data
// directory, then reopens it: no acknowledged event is lost, the
// certificates the killed process wrote come back unchanged at the head of
// the chain, the chain verifies and never goes back, nothing is in safe
// mode, and the next process goes on. Half the rounds kill at a random
// moment after the process starts, which may be while it opens and
// recovers what the previous round left; the other half at a random moment
// after its first acknowledgement, under load. The delays come from a
// seed the test logs, and -kill.seed draws the same ones again (where they
// land in the process's work still varies with its timing).
func TestKernelKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills processes; skipped in -short runs")
	}
	const rounds = 20
	seed := *killSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("kill delays drawn with seed %d (again: -kill.seed %[1]d)", seed)
	dir := filepath.Join(t.TempDir(), "data")
	total, early := 0, 0
	var lastHead uint64
	for round := range rounds {
		env := []string{"OMEGA_TEST_KERNEL_DIR=" + dir, "OMEGA_TEST_KERNEL_ROUND=" + strconv.Itoa(round+1)}
		var acked map[uint64]string
		var head string
		var what string
		if round%2 == 0 {
			delay := time.Duration(rng.IntN(150)) * time.Millisecond
			what = fmt.Sprintf("round %d (killed %v after the start)", round, delay)
			acked, _, head = runKilledAfterStart(t, "TestKernelKillHelperProcess", env, delay)
			if len(acked) == 0 {
				early++
			}
		} else {
			delay := time.Duration(rng.IntN(100)) * time.Millisecond
			what = fmt.Sprintf("round %d (killed %v after the first acknowledgement)", round, delay)
			acked, _, head = runUntilKilledEnv(t, "TestKernelKillHelperProcess", env, delay)
			if len(acked) == 0 {
				t.Fatalf("%s: the helper acknowledged nothing:\n%s", what, head)
			}
		}
		if strings.Contains(head, "helper: failed") {
			t.Fatalf("%s: the helper failed:\n%s", what, head)
		}
		total += len(acked)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			continue // killed before it made the directory
		}
		logged := loggedDigests(t, dir)
		for id, d := range acked {
			if !logged[mustParseHash(t, d)] {
				t.Fatalf("%s: acknowledged event %#x is not in the log", what, id)
			}
		}
		var written [][]byte
		if _, err := os.Stat(filepath.Join(dir, "certs", certLogName)); err == nil {
			written = readCertLog(t, filepath.Join(dir, "certs", certLogName))
		}
		var ds decisions
		untraced(dir, "the killed processes' steps are not recorded")
		k := openKernel(t, dir, &KernelConfig{Signer: kernelKey, OnDecision: ds.add})
		if st := k.Status(); st.SafeMode {
			t.Fatalf("%s: safe mode after a kill: %+v", what, st)
		}
		chain := certEnvelopes(t, k)
		if len(chain) < len(written) {
			t.Fatalf("%s: %d certificates after reopening, %d before", what, len(chain), len(written))
		}
		for i, b := range written {
			if !bytes.Equal(chain[i], b) {
				t.Fatalf("%s: certificate %d changed on reopening", what, i)
			}
		}
		a := verifyKernelChain(t, k)
		if a.BatchID < lastHead {
			t.Fatalf("%s: the chain went back from batch %d to %d", what, lastHead, a.BatchID)
		}
		if err := k.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		lastHead = verifyKernelChain(t, k).BatchID
		closeKernel(t, k)
	}
	t.Logf("%d events acknowledged across %d killed processes (%d killed before acknowledging any); chain at batch %d", total, rounds, early, lastHead)
}

func mustParseHash(t *testing.T, s string) Hash {
	h, err := ParseHash(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
