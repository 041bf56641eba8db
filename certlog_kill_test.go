package omega

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/omega-sheaf/omega/framelog"
)

// The helper process of TestCertStoreKilled: it opens the certificate log
// named by the environment under SyncAlways and certifies obstruction after
// obstruction until it is killed, printing each batch id and cert_hash once
// CertifyAppend has returned, that is, once the certificate is durable.
func TestCertStoreKillHelperProcess(t *testing.T) {
	dir := os.Getenv("OMEGA_TEST_KILL_CERTS")
	if dir == "" {
		t.Skip("run by TestCertStoreKilled")
	}
	s, err := OpenCertStore(dir, certLogHeader(), &framelog.WriterOptions{Sync: framelog.SyncAlways})
	if err != nil {
		fmt.Println("helper: failed:", err)
		return
	}
	outs := obstructionOutputs(t, 64)
	for k := s.Head().BatchID + 1; ; k++ {
		c, err := s.CertifyAppend(outs[k%64], DefaultBinding(), BatchMeta{BatchID: k, CreatedAtNs: k}, certLogKey())
		if err != nil {
			fmt.Println("helper: failed:", err)
			return
		}
		fmt.Printf("acked %d %s\n", k, c.Hash())
	}
}

// TestCertStoreKilled kills a process appending certificates at arbitrary
// moments (SIGKILL) and reopens the store each time: every certificate the
// process acknowledged is there, the chain verifies, and the next process
// continues it.
func TestCertStoreKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills processes; skipped in -short runs")
	}
	dir := t.TempDir()
	var last uint64
	for round := range 8 {
		acked, roundLast, head := runUntilKilled(t, "TestCertStoreKillHelperProcess", "OMEGA_TEST_KILL_CERTS="+dir, time.Duration(3+5*round)*time.Millisecond)
		if acked[last+1] == "" {
			t.Fatalf("round %d: the helper did not continue after batch %d:\n%s", round, last, head)
		}
		s, err := OpenCertStore(dir, certLogHeader(), nil)
		if err != nil {
			t.Fatalf("round %d: reopening after the kill: %v", round, err)
		}
		if got := s.Head().BatchID; got < roundLast {
			t.Fatalf("round %d: reopened after batch %d, but batch %d was acknowledged", round, got, roundLast)
		}
		for k, h := range acked {
			if c, ok := s.LookupBatch(k); !ok || c.Hash().String() != h {
				t.Fatalf("round %d: acknowledged certificate of batch %d (%s) reads back as %v, %v", round, k, h, c, ok)
			}
		}
		if _, err := s.VerifyAll(certLogRing(), DefaultBinding()); err != nil {
			t.Fatalf("round %d: the chain after the kill: %v", round, err)
		}
		last = s.Head().BatchID
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d certificates appended across 8 killed processes", last)
}
