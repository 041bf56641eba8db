package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickstart runs the quickstart as the README does, then twice on a
// kept directory with --json: the second run goes on from the first one's
// chain, and each reports both kinds of obstruction, a verified chain and
// a deterministic replay.
func TestQuickstart(t *testing.T) {
	var out, errs bytes.Buffer
	if err := run(nil, &out, &errs); err != nil {
		t.Fatalf("quickstart: %v\n%s", err, errs.String())
	}
	for _, want := range []string{"obstruction by 3001 overlap_agreement", "obstruction by 2002 dependency_known", "evidence: event", "certificates verify", ": deterministic"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output lacks %q:\n%s", want, out.String())
		}
	}

	dir := filepath.Join(t.TempDir(), "data")
	var head uint64
	for i := range 2 {
		out.Reset()
		if err := run([]string{"--json", "--dir", dir, "--events", "12"}, &out, &errs); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, errs.String())
		}
		var r report
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("run %d: the output is not one JSON object: %v\n%s", i, err, out.String())
		}
		kinds := map[uint32]bool{}
		for _, d := range r.Decisions {
			if d.Kind == "obstruction" {
				kinds[d.Predicate] = len(d.Evidence) > 0
			}
		}
		if !kinds[3001] || !kinds[2002] {
			t.Errorf("run %d: obstructions with evidence %v, want 3001 and 2002", i, kinds)
		}
		if !r.Chain.Verified || r.Chain.HeadBatchID <= head || r.Replay == nil || r.Replay.Result != "deterministic" || r.Replay.Batches == 0 {
			t.Errorf("run %d: chain %+v (previous head %d), replay %+v", i, r.Chain, head, r.Replay)
		}
		head = r.Chain.HeadBatchID
	}
}
