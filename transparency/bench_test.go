package transparency

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

// chain returns n certificates, a chain from genesis, made once per n.
var chain = sync.OnceValue(func() []*omega.Certificate {
	c, _ := omega.NewChecker(nil)
	var out []*omega.Certificate
	var st *omega.State
	prev := omega.Hash{}
	for i := range benchCerts {
		out1, err := c.Reconcile(st, batchAfterOne(i))
		if err != nil {
			panic(err)
		}
		st = out1.Result.Merge.Next.Commit()
		cert, err := omega.Certify(out1, c.Binding(), omega.BatchMeta{BatchID: uint64(i + 1)}, prev, certKey)
		if err != nil {
			panic(err)
		}
		prev = cert.Hash()
		out = append(out, cert)
	}
	return out
})

const benchCerts = 20000

func batchAfterOne(i int) []omega.Event {
	p := []byte(fmt.Sprint("payload ", i))
	return []omega.Event{{ID: omega.ID64(uint64(i + 1)), NodeID: 1, Lamport: uint64(i + 1), PayloadHash: omega.PayloadHash(p), Deps: []omega.EventID{}, Payload: p}}
}

// BenchmarkAppend appends certificates, already signed, to a store with
// group commit (a sync every 64) and has its transparency log sign a
// checkpoint once 100 were added (so at the first sync after that):
// certs/s is the rate of the store and the transparency layer, signing
// the certificates excluded (that is the issuer's, one Ed25519 signature
// each, made ahead for 20,000 certificates; a longer run starts new
// stores, untimed).
func BenchmarkAppend(b *testing.B) {
	certs := chain()
	c, _ := omega.NewChecker(nil)
	var (
		s *omega.CertStore
		l *Log
	)
	closeAll := func() {
		if l != nil {
			l.Close()
			s.Close()
		}
	}
	defer closeAll()
	b.ReportAllocs()
	b.ResetTimer()
	var elapsed time.Duration
	checkpoints := 0
	for i := range b.N {
		if i%len(certs) == 0 {
			// The chain made ahead is used up: a new store, untimed.
			b.StopTimer()
			closeAll()
			dir := b.TempDir()
			var err error
			if s, err = omega.OpenCertStore(dir, c.Binding().Header(), &framelog.WriterOptions{Sync: framelog.SyncBatch}); err != nil {
				b.Fatal(err)
			}
			if l, err = OpenLog(dir, origin, s, logKey, Policy{Every: 100}); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		start := time.Now()
		if err := s.Append(certs[i%len(certs)]); err != nil {
			b.Fatal(err)
		}
		if i%64 == 63 || i == b.N-1 {
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
			signed, err := l.Update(time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			if signed {
				checkpoints++
			}
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "certs/s")
	b.ReportMetric(float64(b.N)/float64(max(checkpoints, 1)), "certs/checkpoint")
}

// BenchmarkProofs measures proofs in a tree of 10^6 leaves (400-byte
// records, the size of a merge certificate's envelope).
func BenchmarkProofs(b *testing.B) {
	const n = 1_000_000
	rec := make([]byte, 400)
	record := func(i int64) []byte {
		rec[0], rec[1], rec[2] = byte(i), byte(i>>8), byte(i>>16)
		return rec
	}
	t := treeOf(b, n, record)
	root, _ := t.Root(n)
	oldRoot, _ := t.Root(n / 3)
	leaf := tlog.RecordHash(record(n / 2))
	incl, _ := t.ProveInclusion(n/2, n)
	cons, _ := t.ProveConsistency(n/3, n)
	b.Run("inclusion/prove", func(b *testing.B) {
		for b.Loop() {
			if _, err := t.ProveInclusion(n/2, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("inclusion/verify", func(b *testing.B) {
		for b.Loop() {
			if err := tlog.CheckRecord(incl, n, root, n/2, leaf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency/prove", func(b *testing.B) {
		for b.Loop() {
			if _, err := t.ProveConsistency(n/3, n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency/verify", func(b *testing.B) {
		a, c := Checkpoint{Origin: origin, Size: n / 3, Root: oldRoot}, Checkpoint{Origin: origin, Size: n, Root: root}
		for b.Loop() {
			if err := VerifyConsistency(a, c, cons); err != nil {
				b.Fatal(err)
			}
		}
	})
}
