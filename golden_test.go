package omega

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/omega-sheaf/omega/internal/digest"
	"github.com/omega-sheaf/omega/predicates"
)

// testdata/golden/reconcile.jsonl pins, one JSON line per scenario, the
// checker output of fixed batches beyond SPEC's own vectors: larger and
// shuffled batches, redeliveries, every predicate, a domain predicate and a
// history. Regenerate it, after a deliberate change of CheckerVersion, with
//
//	go test -run TestGoldenReconcile -update-golden .
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden")

const goldenReconcile = "testdata/golden/reconcile.jsonl"

type oddLamport struct{}

func (oddLamport) Entry() predicates.Entry {
	return predicates.Entry{ID: 4100, Name: "even_lamport", Arity: 1, SemanticsRef: "test://even_lamport/v1"}
}

func (oddLamport) Violated(e *Event, _ *State) bool { return e.Lamport%2 == 1 && e.Kind == 7 }

func goldenEvent(id uint64, node uint32, stream uint16, lamport uint64, payload string, deps ...uint64) Event {
	e := Event{ID: ID64(id), NodeID: node, StreamID: stream, Lamport: lamport, MonoTSNs: lamport * 1000, Kind: 1,
		PayloadHash: digest.Plain([]byte(payload)), Deps: []EventID{}, Payload: []byte(payload)}
	for _, d := range deps {
		e.Deps = append(e.Deps, ID64(d))
	}
	return e
}

func goldenScenarios(t *testing.T) (lines [][]byte) {
	plain, err := NewChecker(nil)
	if err != nil {
		t.Fatal(err)
	}
	domain, err := NewChecker(&CheckerOptions{Domain: []DomainPredicate{oddLamport{}}})
	if err != nil {
		t.Fatal(err)
	}
	add := func(name string, c *Checker, prior *State, events []Event) *State {
		out, err := c.Reconcile(prior, events)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		line := fmt.Appendf(nil, `{"name":%q,"checker_output":`, name)
		line = out.AppendJSON(line)
		if m := out.Result.Merge; m != nil {
			line = fmt.Appendf(line, `,"next_state":{"known":%d,"heads_digest":"%v"}`, m.Next.KnownCount(), m.Next.HeadsDigest())
		}
		lines = append(lines, append(line, '}'))
		if out.Result.Merge != nil {
			return out.Result.Merge.Next
		}
		return prior
	}
	bench := benchEvents(200)
	s1 := add("bench_200", plain, nil, bench)
	redelivered := append(shuffled(bench), bench[:50]...)
	add("bench_200_shuffled_redelivered", plain, nil, redelivered)
	add("bench_200_diverging_copy", plain, nil, append(slices.Clone(bench), func() Event {
		e := cloneEvent(&bench[17])
		e.MonoTSNs = 99
		return e
	}()))
	next := []Event{
		goldenEvent(1001, 0, 0, 1000, "n0", 200, 199),
		goldenEvent(1002, 40, 3, 5, "n1"),
		goldenEvent(1003, 40, 3, 6, "n2", 1002, 1),
	}
	s2 := add("history_second_batch", plain, s1, next)
	add("violate_1002_redelivered_accepted", plain, s2, []Event{next[1]})
	add("violate_1001_prior_head", plain, s2, []Event{goldenEvent(2000, 40, 3, 6, "h")})
	add("violate_1003_self", plain, s2, []Event{goldenEvent(2001, 41, 0, 3, "s", 2001)})
	add("violate_1003_prior_dep", plain, s2, []Event{goldenEvent(2002, 41, 0, 3, "p", 1003)})
	add("violate_2002_unknown", plain, s2, []Event{goldenEvent(2003, 41, 0, 9, "u", 1, 77777)})
	wrong := goldenEvent(2004, 41, 0, 9, "w")
	wrong.PayloadHash[0] ^= 1
	add("violate_2001_first_of_two", plain, s2, []Event{wrong, goldenEvent(2005, 41, 1, 9, "w", 424242)})
	odd := goldenEvent(2006, 42, 0, 11, "odd")
	odd.Kind = 7
	add("violate_domain_4100", domain, s2, []Event{odd, goldenEvent(2007, 42, 1, 12, "even")})
	both := goldenEvent(2008, 42, 1, 11, "both", 999999)
	both.Kind = 7 // violates 4100 and 2002: the built-in comes first
	add("domain_after_builtins_same_event", domain, s2, []Event{both})
	add("empty_batch", plain, s2, nil)
	return lines
}

func TestGoldenReconcile(t *testing.T) {
	got := bytes.Join(goldenScenarios(t), []byte("\n"))
	got = append(got, '\n')
	if *updateGolden {
		if err := os.MkdirAll("testdata/golden", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenReconcile, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(goldenReconcile)
	if err != nil {
		t.Fatal(err)
	}
	gotLines, wantLines := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
	if len(gotLines) != len(wantLines) {
		t.Fatalf("%d golden lines, want %d", len(gotLines), len(wantLines))
	}
	for i := range gotLines {
		if !bytes.Equal(gotLines[i], wantLines[i]) {
			t.Errorf("golden line %d\n got %s\nwant %s", i+1, gotLines[i], wantLines[i])
		}
	}
}
