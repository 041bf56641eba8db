package omega

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// killBatch returns the events of batch k (from 1) of the killed journal's
// history: four events of historyEvent, the same on every run.
func killBatch(k uint64) []Event {
	es := make([]Event, 4)
	for i := range es {
		es[i] = historyEvent(int(4*(k-1)) + i)
	}
	return es
}

// The helper process of TestJournalKilled: it opens the journal named by
// the environment and decides batch after batch until it is killed,
// printing each batch id and merged state hash once Decide has returned,
// that is, once the batch is synced (acknowledged).
func TestJournalKillHelperProcess(t *testing.T) {
	path := os.Getenv("OMEGA_TEST_KILL_PATH")
	if path == "" {
		t.Skip("run by TestJournalKilled")
	}
	j, err := OpenJournal(context.Background(), path, defaultChecker(t), &JournalOptions{ReplaySeed: testSeed})
	if err != nil {
		fmt.Println("helper: failed:", err)
		return
	}
	for k := j.LastBatchID() + 1; ; k++ {
		es := killBatch(k)
		if _, err := j.LogEvents(es); err != nil {
			fmt.Println("helper: failed:", err)
			return
		}
		out, err := j.Decide(es, BatchMeta{BatchID: k, ReplaySeed: testSeed, CreatedAtNs: k})
		if err != nil || out.Result.Kind != KindMerge {
			fmt.Println("helper: failed:", err, out.Result)
			return
		}
		fmt.Printf("acked %d %s\n", k, out.Result.Merge.MergedStateHash)
	}
}

// TestJournalKilled kills a process that is deciding batches through a
// Journal at arbitrary moments (SIGKILL: no deferred call runs, the page
// cache keeps what was written), then reopens the log: every batch the
// process acknowledged is there with the state it reported, and the next
// process continues the history. The log finally replays as
// deterministic.
func TestJournalKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills processes; skipped in -short runs")
	}
	path := filepath.Join(t.TempDir(), "events.omega")
	c := defaultChecker(t)
	var lastAcked uint64
	for round := range 8 {
		acked, roundLast, head := runUntilKilled(t, "TestJournalKillHelperProcess", "OMEGA_TEST_KILL_PATH="+path, time.Duration(5+7*round)*time.Millisecond)
		if acked[lastAcked+1] == "" {
			t.Fatalf("round %d: the helper did not continue after batch %d:\n%s", round, lastAcked, head)
		}
		lastAcked = roundLast

		// Everything acknowledged survived, with the state reported.
		j, err := OpenJournal(t.Context(), path, c, &JournalOptions{ReplaySeed: testSeed})
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		switch got := j.LastBatchID(); {
		case got < lastAcked:
			t.Fatalf("round %d: reopened after batch %d, but batch %d was acknowledged", round, got, lastAcked)
		case got == lastAcked && j.State().MergedStateHash().String() != acked[lastAcked]:
			t.Fatalf("round %d: reopened at state %s, acknowledged %s", round, j.State().MergedStateHash(), acked[lastAcked])
		}
		// A batch decided but killed before it said so is kept too.
		lastAcked = j.LastBatchID()
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
	}
	j, err := OpenJournal(t.Context(), path, c, &JournalOptions{ReplaySeed: testSeed})
	if err != nil {
		t.Fatal(err)
	}
	final := j.State().MergedStateHash()
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r := mustReplay(t, nil, b, final, testSeed, c, nil); r.Outcome != Deterministic || r.LastBatchID != lastAcked {
		t.Fatalf("the killed and continued log replays %v after batch %d, want deterministic after %d", r.Outcome, r.LastBatchID, lastAcked)
	}
	t.Logf("%d batches decided across 8 killed processes", lastAcked)
}
