package omega

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/omega-sheaf/omega/framelog"
)

// BenchmarkCertStoreAppend appends certificates to a store in a temporary
// directory, syncing after every append (SyncAlways) or every 64 appends
// (SyncBatch, a group commit). When the prepared chain runs out, the store
// starts over in a new directory, outside the timer.
func BenchmarkCertStoreAppend(b *testing.B) {
	const chain = 512
	certs := certLogChain(b, chain)
	var size int64
	for _, c := range certs {
		size += int64(12 + len(c.Bytes()))
	}
	for _, bc := range []struct {
		name   string
		policy framelog.SyncPolicy
		every  int // Sync after this many appends; 0 for never
	}{
		{"framelog.SyncAlways", framelog.SyncAlways, 0},
		{"SyncBatch64", framelog.SyncBatch, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size / chain)
			b.ReportAllocs()
			base := b.TempDir()
			run := 0
			var s *CertStore
			open := func() {
				if s != nil {
					if err := s.Close(); err != nil {
						b.Fatal(err)
					}
				}
				run++
				s = openStore(b, filepath.Join(base, fmt.Sprint(run)), bc.policy)
			}
			open()
			i := 0
			for b.Loop() {
				if i == chain {
					b.StopTimer()
					open()
					i = 0
					b.StartTimer()
				}
				if err := s.Append(certs[i]); err != nil {
					b.Fatal(err)
				}
				i++
				if bc.every > 0 && i%bc.every == 0 {
					if err := s.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := s.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
