package omega

import (
	"fmt"

	"github.com/omega-sheaf/omega/internal/digest"
)

// BatchCounter counts the distinct contents of a batch as its events are
// read, so that a reader refuses a batch of more than [MaxBatchContents]
// distinct contents as soon as it has read one event too many, rather than
// after decoding all of it (SPEC 4). It applies the rule of
// [Checker.Reconcile]: identical copies of an event count once, so it
// refuses exactly the batches Reconcile refuses for their size.
// [DecodeEventsJSON] uses one; a reader of another source, such as a frame
// log of EVENT frames, calls [BatchCounter.Check] after each event it
// appends.
//
// It costs nothing while the batch holds at most MaxBatchContents events.
// Past that it computes each event's digest once, from the first event on,
// and keeps the distinct digests (32 bytes and a map entry each) until it
// is dropped.
//
// The zero value counts one batch from its first event. A BatchCounter is
// not safe for concurrent use.
type BatchCounter struct {
	max     int // the limit; 0 means MaxBatchContents (tests lower it)
	seen    map[Hash]struct{}
	counted int // events[:counted] are in seen
	h       *digest.Hasher
	buf     []byte
}

// Check checks events, the batch read so far. It returns nil while they
// hold at most MaxBatchContents distinct contents, and an error wrapping
// [ErrBatchTooLarge] that names the event (its index in events) whose
// content is one too many. Each call must pass the events of the previous
// call, unchanged, followed by any read since: a reader calls it with its
// slice after each append, and stops at the first error.
//
// Events that are not structurally valid (see [Event.Validate]) may count
// as fewer contents than they are, never as more; Reconcile refuses them.
func (c *BatchCounter) Check(events []Event) error {
	limit := c.max
	if limit == 0 {
		limit = MaxBatchContents
	}
	if len(events) <= limit {
		return nil
	}
	if c.seen == nil {
		c.seen = make(map[Hash]struct{}, len(events))
		c.h = digest.New(digest.Event)
		c.buf = make([]byte, 0, smallEvent)
	}
	for i := c.counted; i < len(events); i++ {
		c.seen[eventDigest(c.h, &events[i], c.buf)] = struct{}{}
		if len(c.seen) > limit {
			c.counted = i + 1
			return fmt.Errorf("%w: event %d is a distinct content past the limit of %d", ErrBatchTooLarge, i, limit)
		}
	}
	c.counted = len(events)
	return nil
}
