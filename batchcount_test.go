package omega

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// tinyEvents returns n distinct events, the smallest there are.
func tinyEvents(n int) []Event {
	events := make([]Event, n)
	for i := range events {
		events[i] = Event{ID: ID64(uint64(i) + 1), Deps: []EventID{}, Payload: []byte{}}
	}
	return events
}

func TestBatchCounter(t *testing.T) {
	const limit = 4
	distinct := tinyEvents(limit + 1)
	tests := []struct {
		name   string
		events []Event
		at     int // the event refused, or -1
	}{
		{"at the limit", distinct[:limit], -1},
		{"one past the limit", distinct, limit},
		{"copies do not count", append(append([]Event(nil), distinct[:limit]...), distinct[0], distinct[3], distinct[0]), -1},
		{"a content past the limit after copies", append(append([]Event(nil), distinct[:limit]...), distinct[1], distinct[1], distinct[limit], distinct[0]), limit + 2},
	}
	for _, tc := range tests {
		c := BatchCounter{max: limit}
		at := -1
		for i := range tc.events {
			if err := c.Check(tc.events[:i+1]); err != nil {
				if !errors.Is(err, ErrBatchTooLarge) || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), fmt.Sprintf("event %d is", i)) {
					t.Errorf("%s: Check(%d events) = %v, want an ErrBatchTooLarge naming event %d", tc.name, i+1, err, i)
				}
				at = i
				break
			}
		}
		if at != tc.at {
			t.Errorf("%s: refused at event %d, want %d", tc.name, at, tc.at)
		}
		// Checked all at once, the answer is the same.
		c = BatchCounter{max: limit}
		if err := c.Check(tc.events); (err != nil) != (tc.at >= 0) {
			t.Errorf("%s: Check(all %d events) = %v", tc.name, len(tc.events), err)
		}
	}
	// Up to the limit nothing is hashed or kept.
	c := BatchCounter{max: limit}
	if err := c.Check(distinct[:limit]); err != nil || c.seen != nil {
		t.Errorf("Check(%d events) = %v and kept %d digests, want nil and none", limit, err, len(c.seen))
	}
}

// TestBatchCounterLimit checks the counter's default limit on the largest
// batch there is, and one content more, with the smallest events.
func TestBatchCounterLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes a million events; skipped in -short runs")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(10)) // the events are most of the heap
	events := tinyEvents(MaxBatchContents + 1)
	var c BatchCounter
	if err := c.Check(events[:MaxBatchContents]); err != nil {
		t.Errorf("Check(%d events) = %v, want nil", MaxBatchContents, err)
	}
	if err := c.Check(append(events[:MaxBatchContents:MaxBatchContents], events[0])); err != nil {
		t.Errorf("Check(%d distinct contents and a copy) = %v, want nil", MaxBatchContents, err)
	}
	c = BatchCounter{}
	if err := c.Check(events); !errors.Is(err, ErrBatchTooLarge) {
		t.Errorf("Check(%d distinct contents) = %v, want ErrBatchTooLarge", len(events), err)
	}
}

// tinyJSON writes n distinct events as JSON lines, or as an array, each as
// short as JSON lets it be, followed by tail.
func tinyJSON(n int, array bool, tail string) []byte {
	const fixed = `{"event_id":,"node_id":0,"stream_id":0,"lamport":0,"mono_ts_ns":0,"event_kind":0,"flags":0,"payload_hash":"","deps":[],"payload":""}` + "\n"
	var b bytes.Buffer
	b.Grow(n*(len(fixed)+64+len(strconv.Itoa(n))) + len(tail) + 2)
	if array {
		b.WriteByte('[')
	}
	for i := range n {
		if array && i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"event_id":`)
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString(`,"node_id":0,"stream_id":0,"lamport":0,"mono_ts_ns":0,"event_kind":0,"flags":0,"payload_hash":"`)
		b.WriteString(strings.Repeat("0", 64))
		b.WriteString(`","deps":[],"payload":""}`)
		if !array {
			b.WriteByte('\n')
		}
	}
	b.WriteString(tail)
	return b.Bytes()
}

// TestDecodeEventsJSONBatchLimit checks, under a lowered limit, that
// decoding stops at the first distinct content past it, before any
// malformed input after it, and that copies do not count.
func TestDecodeEventsJSONBatchLimit(t *testing.T) {
	const limit = 5
	decode := func(data []byte) ([]Event, error) {
		d := newJSONDecoder(data, Limits{})
		d.count.max = limit
		return d.events()
	}
	for _, array := range []bool{false, true} {
		tail := "\nnot JSON"
		if array {
			tail = ",]"
		}
		events, err := decode(tinyJSON(limit+1, array, tail))
		var ee *EventError
		if events != nil || !errors.Is(err, ErrBatchTooLarge) || errors.As(err, &ee) {
			t.Errorf("array %v: decoding %d distinct events and bad JSON = %d events, %v; want ErrBatchTooLarge", array, limit+1, len(events), err)
		}
		if events, err := decode(tinyJSON(limit, array, "")); array && err == nil {
			t.Errorf("array %v: an array without its end = %d events, want a syntax error", array, len(events))
		} else if !array && (err != nil || len(events) != limit) {
			t.Errorf("array %v: decoding %d events = %d, %v", array, limit, len(events), err)
		}
	}
	copies := bytes.Repeat(tinyJSON(1, false, ""), 3*limit)
	if events, err := decode(copies); err != nil || len(events) != 3*limit {
		t.Errorf("decoding %d copies of one event = %d events, %v; want all, no error", 3*limit, len(events), err)
	}
}

// TestDecodeEventsJSONOverLimit decodes one distinct content more than a
// batch may hold, followed by bad JSON: decoding stops at the content past
// the limit.
func TestDecodeEventsJSONOverLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes a million events; skipped in -short runs")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(10)) // the input and the events are most of the heap
	events, err := DecodeEventsJSON(tinyJSON(MaxBatchContents+1, false, "{\n"), Limits{})
	if events != nil || !errors.Is(err, ErrBatchTooLarge) {
		t.Errorf("DecodeEventsJSON(%d distinct events) = %d events, %v; want ErrBatchTooLarge", MaxBatchContents+1, len(events), err)
	}
}
