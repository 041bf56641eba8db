package framelog

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"
)

// RecoverFrom is [Recover] over a stream: it reads r to its end and reports
// the same [Recovery], holding a few MiB of it at a time, so a log of any
// size is checked in constant memory. While the frames are valid, a second
// goroutine checks the CRCs of one block while the next is read, and is
// gone when RecoverFrom returns; from the first frame that is not valid, it
// reads on with a [Reader], which classifies the damage. The error is
// the [*HeaderError] of a bad header or an error of r.
//
// When r is an *os.File holding a regular file with at least 16 MiB from
// its offset on, on 64-bit Linux, RecoverFrom maps the file instead of
// reading it, and leaves its offset where reading would have: the frame
// headers are walked in place and the CRCs checked on two more goroutines,
// and the pages of valid frames are let go behind the walk, so the
// process's memory does not grow with the file. From the first frame that
// is not valid on, the frame reader reads the mapping; a damaged file's
// tail is read whole, as a stream's is. A file truncated while it is read
// this way gives an error wrapping io.ErrUnexpectedEOF rather than a crash.
// Where mapping fails, the file is read.
func RecoverFrom(r io.Reader, opts *ReadOptions) (Recovery, error) {
	if f, ok := r.(*os.File); ok {
		if rec, ok, err := recoverFile(f, opts, mapMin); ok {
			return rec, err
		}
	}
	return recoverFrom(r, opts, recoverBlock)
}

// recoverFrom is RecoverFrom reading block bytes at a time.
//
// It runs as a pipeline of two: this goroutine reads a block and walks its
// frame headers, while a second one checks the CRCs of the block before.
// A block's frames are counted once their CRCs hold; at the first bad
// frame, the bytes from it on (in the blocks read, then in r) go to the
// frame reader.
func recoverFrom(r io.Reader, opts *ReadOptions, block int) (Recovery, error) {
	maxLen := opts.maxFrameLen()
	// A first small read, so that a small log costs little; the blocks
	// after it are full size.
	first := make([]byte, max(min(block, 64<<10), HeaderSize))
	n, err := readFull(r, first)
	first = first[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return Recovery{}, err
	}
	eof := err != nil
	hdr, herr := DecodeHeader(first[:min(n, HeaderSize)])
	if herr != nil || n < HeaderSize {
		// Torn, zeroed or bad: the frame reader's rules decide.
		return recoverSlow(io.MultiReader(bytes.NewReader(first), r), opts, 0, nil)
	}
	var fc frameCount
	counted := func() *Recovery {
		r := Recovery{Header: hdr}
		fc.into(&r)
		return &r
	}

	// The CRC checker, for all but a log read in one go.
	var (
		jobs    chan *recBlock
		results chan int
		wg      sync.WaitGroup
	)
	if !eof {
		jobs, results = make(chan *recBlock, 1), make(chan int, 2)
		wg.Go(func() {
			for b := range jobs {
				results <- firstBadCRC(b.buf, b.spans, false)
			}
		})
		defer func() {
			close(jobs)
			wg.Wait()
		}()
	}
	check := func(b *recBlock) int {
		if jobs == nil {
			return firstBadCRC(b.buf, b.spans, true)
		}
		return <-results
	}

	cur := &recBlock{buf: first, pos: HeaderSize}
	cur.walk(maxLen)
	var spare *recBlock // a block whose result is in: its buffer is free
	for {
		if jobs != nil {
			jobs <- cur
		}
		// Read the next block while the checker checks this one. The
		// frame this one ends inside starts the next.
		var next *recBlock
		if !cur.bad && !eof {
			next = spare
			if next == nil {
				next = new(recBlock)
			}
			need := block
			rest := cur.buf[cur.pos:]
			if len(rest) >= frameHeaderLen {
				if fl, _, ok := frameHead(rest[:frameHeaderLen], maxLen); ok && int(fl) > need {
					// A frame longer than a block: grow toward it as
					// its bytes arrive, at most doubling what is here,
					// for a header alone may claim up to maxLen.
					need = min(int(fl), max(need, 2*len(rest)))
				}
			}
			if cap(next.buf) < need {
				next.buf = make([]byte, need)
			}
			next.buf = next.buf[:cap(next.buf)]
			copy(next.buf, rest)
			n, err := readFull(r, next.buf[len(rest):])
			next.buf = next.buf[:len(rest)+n]
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				check(cur)
				return Recovery{}, err
			}
			eof = err != nil
			next.base, next.pos = cur.base+int64(cur.pos), 0
			next.walk(maxLen)
		}
		i := check(cur)
		if i >= 0 {
			// A bad CRC: the frame reader reads on from that frame.
			fc.add(cur.buf, cur.spans[:i])
			off := cur.spans[i].off
			tail := []io.Reader{bytes.NewReader(cur.buf[off:cur.pos])}
			if next != nil {
				tail = append(tail, bytes.NewReader(next.buf))
			} else {
				tail = append(tail, bytes.NewReader(cur.buf[cur.pos:]))
			}
			return recoverSlow(io.MultiReader(append(tail, r)...), opts, cur.base+int64(off), counted())
		}
		fc.add(cur.buf, cur.spans)
		if next == nil {
			if cur.bad || cur.pos < len(cur.buf) {
				// A bad frame at pos, or an incomplete one at the end.
				return recoverSlow(io.MultiReader(bytes.NewReader(cur.buf[cur.pos:]), r), opts, cur.base+int64(cur.pos), counted())
			}
			rec := counted()
			rec.TailOffset = cur.base + int64(cur.pos)
			rec.ValidBytes = rec.TailOffset - HeaderSize
			rec.Tail = TailClean
			return *rec, nil
		}
		// The checker is done with cur: its buffer takes the block after
		// next, unless a smaller first read made it.
		spare = nil
		if cap(cur.buf) >= block {
			spare = cur
		}
		cur = next
	}
}

// readFull is io.ReadFull with the guards of Reader's reads: an
// invalid count from r is an error, and so are 100 reads in a row that
// return nothing and no error (io.ErrNoProgress), where io.ReadFull would
// spin.
func readFull(r io.Reader, b []byte) (int, error) {
	n, empty := 0, 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		if m < 0 || m > len(b)-n {
			return n, fmt.Errorf("%w %d for a %d-byte buffer", errInvalidReadCount, m, len(b)-n)
		}
		n += m
		switch {
		case n == len(b):
			return n, nil
		case err == io.EOF && n > 0:
			return n, io.ErrUnexpectedEOF
		case err != nil:
			return n, err
		case m == 0:
			if empty++; empty >= 100 {
				return n, io.ErrNoProgress
			}
		default:
			empty = 0
		}
	}
	return n, nil
}

// recBlock is a block of a log RecoverFrom reads: buf holds the log from
// offset base on, whole frames at spans up to pos, and from pos on the
// start of a frame that continues beyond the block, or a bad one.
type recBlock struct {
	buf   []byte
	base  int64
	pos   int
	spans []frameSpan
	bad   bool // the frame header at pos is not valid
}

// walk finds the whole frames of b from pos on by their headers.
func (b *recBlock) walk(maxLen uint32) {
	b.spans, b.bad = b.spans[:0], false
	p := b.pos
	for len(b.buf)-p >= frameHeaderLen {
		fl, _, ok := frameHead(b.buf[p:p+frameHeaderLen], maxLen)
		if !ok {
			b.bad = true
			break
		}
		if uint64(fl) > uint64(len(b.buf)-p) {
			break
		}
		b.spans = append(b.spans, frameSpan{p, int(fl)})
		p += int(fl)
	}
	b.pos = p
}

// recoverBlock is how much RecoverFrom reads at a time.
const recoverBlock = 4 << 20

type frameSpan struct{ off, n int }

// frameCount counts valid frames by type. SPEC's types are counted in an
// array: counting them in a map cost a fifth of the time of reading a log
// of small frames.
type frameCount struct {
	frames int
	spec   [FrameIncident + 1]int
	other  map[FrameType]int // made at the first frame of another type
}

// one counts a frame of type t.
func (c *frameCount) one(t FrameType) {
	c.frames++
	if t < FrameType(len(c.spec)) {
		c.spec[t]++
		return
	}
	if c.other == nil {
		c.other = make(map[FrameType]int)
	}
	c.other[t]++
}

// add counts the frames at spans of b.
func (c *frameCount) add(b []byte, spans []frameSpan) {
	for _, s := range spans {
		c.one(FrameType(binary.LittleEndian.Uint16(b[s.off+frameOffType:])))
	}
}

// merge adds o's counts to c's.
func (c *frameCount) merge(o *frameCount) {
	c.frames += o.frames
	for t, n := range o.spec {
		c.spec[t] += n
	}
	for t, n := range o.other {
		if c.other == nil {
			c.other = make(map[FrameType]int)
		}
		c.other[t] += n
	}
}

// into sets rec's Frames and FramesByType from c.
func (c *frameCount) into(rec *Recovery) {
	rec.Frames = c.frames
	rec.FramesByType = make(map[FrameType]int, len(c.other)+len(c.spec))
	for t, n := range c.spec {
		if n > 0 {
			rec.FramesByType[FrameType(t)] = n
		}
	}
	for t, n := range c.other {
		rec.FramesByType[t] = n
	}
}

// firstBadCRC returns the index of the first span in b whose CRC fails, or
// -1; with split, it checks halves of a large run on two goroutines.
func firstBadCRC(b []byte, spans []frameSpan, split bool) int {
	check := func(ss []frameSpan) int {
		for i, s := range ss {
			if !frameCRCValid(b[s.off : s.off+s.n]) {
				return i
			}
		}
		return -1
	}
	if !split || len(spans) < 256 {
		return check(spans)
	}
	h := len(spans) / 2
	var second int
	var wg sync.WaitGroup
	wg.Go(func() { second = check(spans[h:]) })
	first := check(spans[:h])
	wg.Wait()
	switch {
	case first >= 0:
		return first
	case second >= 0:
		return h + second
	}
	return -1
}

// recoverSlow recovers with a Reader. With done nil, r is the whole
// log; otherwise r holds the log from offset off on, after the frames done
// already counted, and a header is put in front of it for the reader.
func recoverSlow(r io.Reader, opts *ReadOptions, off int64, done *Recovery) (Recovery, error) {
	cr := &countingReader{r: r}
	var src io.Reader = cr
	delta := int64(0)
	if done != nil {
		h, _ := done.Header.AppendBinary(nil)
		src, delta = io.MultiReader(bytes.NewReader(h), cr), off-HeaderSize
	}
	fr := NewReader(src, opts)
	hdr, err := fr.Header()
	if err != nil {
		return Recovery{}, err
	}
	rec := Recovery{Header: hdr, TornHeader: fr.TornHeader(), FramesByType: map[FrameType]int{}}
	if done != nil {
		rec = *done
	}
	end := int64(HeaderSize)
	if rec.TornHeader {
		rec.Tail, end = TailTorn, 0
	} else {
		for {
			f, err := fr.Next()
			if err == nil {
				rec.Frames++
				rec.FramesByType[f.Type]++
				end = f.Offset + frameHeaderLen + int64(len(f.Payload))
				continue
			}
			if err == io.EOF {
				break
			}
			fe, ok := err.(*FrameError)
			if !ok {
				return Recovery{}, err
			}
			fe.Offset += delta
			rec.Err, rec.Tail = fe, TailTorn
			if fe.Err == ErrCorrupt {
				rec.Tail = TailCorrupt
			}
			break
		}
		end += delta
		rec.ValidBytes = end - HeaderSize
	}
	// What the reader left unread still counts as the tail.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return Recovery{}, err
	}
	rec.TailOffset = end
	rec.TailBytes = off + cr.n - end
	return rec, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
