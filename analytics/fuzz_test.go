package analytics

import (
	"bytes"
	"testing"

	"github.com/omega-sheaf/omega"
)

// FuzzReadJSONL feeds ReadJSONL arbitrary lines: it never panics, and what
// it reads, written again by a JSONLSink, reads back the same.
func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"seq_id":1,"metric":"reconcile.obstruction","value":1,"metadata":{"batch":"3","predicate":"3001"}}` + "\n"))
	f.Add([]byte(`{"seq_id":2,"metric":"latency.submit_to_durable_us","value":1.5e300,"metadata":{}}` + "\n"))
	f.Add([]byte(`{"seq_id":3,"metric":"m","value":null}` + "\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := ReadJSONL(bytes.NewReader(b))
		if err != nil {
			return
		}
		Analyze(ss, nil)
		var buf bytes.Buffer
		sink := omega.NewJSONLSink(&buf)
		for _, s := range ss {
			sink.Record(omega.Metric{Name: s.Name, Value: float64(s.Value), Metadata: s.Metadata})
		}
		if err := sink.Flush(); err != nil {
			t.Fatal(err)
		}
		again, err := ReadJSONL(&buf)
		if err != nil || len(again) != len(ss) {
			t.Fatalf("re-reading %d samples: %d, %v", len(ss), len(again), err)
		}
		for i := range ss {
			if again[i].Name != ss[i].Name || (again[i].Value != ss[i].Value && float64(again[i].Value) != float64(ss[i].Value)) {
				t.Fatalf("sample %d: %+v read back as %+v", i, ss[i], again[i])
			}
		}
	})
}
