package omega

import (
	"io"
	"sync"

	"github.com/omega-sheaf/omega/framelog"
)

// preScan reads a log held in memory ahead of a replay, on a goroutine of
// its own: it scans the frames (their CRCs and headers checked) and decodes
// and validates each EVENT frame, so that the replay, on its goroutine,
// only takes the results in order. [Replay] runs one beside its Replayer,
// which has the two cores then: one checks frames while the other
// re-executes batches. The results are exactly those of reading the log
// on the replay's goroutine: the same frames and errors, in order, the
// same decoding errors, taken at the same frames.
type preScan struct {
	chunks chan []preItem // scanned frames, in order; the last ends with an error (io.EOF at the end)
	free   chan []preItem // chunks the replay is done with
	done   chan struct{}  // closed to stop the scan early
	wg     sync.WaitGroup

	cur []preItem // the chunk being taken, and the next item in it
	at  int

	// The decoding of the EVENT frame Next returned last.
	decoded bool
	id      EventID
	derr    error
}

// preItem is one frame scanned ahead, or the scanner's error in its place.
type preItem struct {
	f       framelog.Frame
	err     error
	decoded bool // f is an EVENT frame, decoded: id, or the error derr
	id      EventID
	derr    error
}

// preChunk is how many frames go from the scan to the replay at a time:
// enough that handing them over costs nothing beside their checking.
const preChunk = 4096

// startPreScan starts scanning log, whose events are decoded under lim.
// The caller stops it with stop, whether or not it read it all.
func startPreScan(log []byte, opts *framelog.ReadOptions, lim Limits) *preScan {
	p := &preScan{chunks: make(chan []preItem, 2), free: make(chan []preItem, 3), done: make(chan struct{})}
	p.wg.Go(func() {
		defer close(p.chunks)
		s := framelog.NewScanner(log, opts)
		chunk := make([]preItem, 0, preChunk)
		for {
			f, err := s.Next()
			it := preItem{f: f, err: err}
			if err == nil && f.Type == framelog.FrameEvent {
				e, derr := decodeEvent(f.Payload, lim, true)
				it.decoded, it.id, it.derr = true, e.ID, derr
			}
			chunk = append(chunk, it)
			if err == nil && len(chunk) < preChunk {
				continue
			}
			select {
			case p.chunks <- chunk:
			case <-p.done:
				return
			}
			if err != nil {
				return
			}
			select {
			case chunk = <-p.free:
				chunk = chunk[:0]
			default:
				chunk = make([]preItem, 0, preChunk)
			}
		}
	})
	return p
}

// Next returns the next frame scanned, as a framelog.Scanner's Next would.
func (p *preScan) Next() (framelog.Frame, error) {
	if p.at == len(p.cur) {
		if p.cur != nil {
			select {
			case p.free <- p.cur:
			default:
			}
		}
		c, ok := <-p.chunks
		if !ok {
			return framelog.Frame{}, io.EOF // not reached: the last chunk ends with an error
		}
		p.cur, p.at = c, 0
	}
	it := &p.cur[p.at]
	p.at++
	p.decoded, p.id, p.derr = it.decoded, it.id, it.derr
	return it.f, it.err
}

// stop ends the scan and waits for its goroutine.
func (p *preScan) stop() {
	close(p.done)
	p.wg.Wait()
}
