package omega

import (
	"bytes"
	"encoding/binary"
	"io"
	"sync"
)

// RecoverFrom is [Recover] over a stream: it reads r to its end and reports
// the same [Recovery], holding a few MiB of it at a time, so a log of any
// size is checked in constant memory. While the frames are valid it reads
// blocks and checks their CRCs on two goroutines; from the first frame that
// is not, it reads on with a [FrameReader], which classifies the damage.
// The error is the [*HeaderError] of a bad header or an error of r.
func RecoverFrom(r io.Reader, opts *ReadOptions) (Recovery, error) {
	return recoverFrom(r, opts, recoverBlock)
}

// recoverFrom is RecoverFrom reading block bytes at a time.
func recoverFrom(r io.Reader, opts *ReadOptions, block int) (Recovery, error) {
	maxLen := opts.maxFrameLen()
	// A first small read, so that a small log costs little; the blocks
	// after it are full size.
	buf := make([]byte, max(min(block, 64<<10), HeaderSize))
	n, err := io.ReadFull(r, buf)
	buf = buf[:n]
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return Recovery{}, err
	}
	eof := err != nil
	hdr, herr := DecodeHeader(buf[:min(n, HeaderSize)])
	if herr != nil || n < HeaderSize {
		// Torn, zeroed or bad: the frame reader's rules decide.
		return recoverSlow(io.MultiReader(bytes.NewReader(buf), r), opts, 0, nil)
	}
	rec := Recovery{Header: hdr, FramesByType: map[FrameType]int{}}
	var (
		base  int64 // log offset of buf[0]
		pos   = HeaderSize
		spans []frameSpan
		// SPEC's frame types are counted here, not in the map, which
		// cost a fifth of the time of reading a log of small frames.
		byType [FrameIncident + 1]int
	)
	counted := func() *Recovery {
		for t, n := range byType {
			if n > 0 {
				rec.FramesByType[FrameType(t)] += n
			}
		}
		byType = [len(byType)]int{}
		return &rec
	}
	for {
		// Walk the whole frames in buf from pos on; check their CRCs
		// together.
		spans = spans[:0]
		p := pos
		bad := false
		for {
			if len(buf)-p < frameHeaderLen {
				break
			}
			fl, _, ok := frameHead(buf[p:p+frameHeaderLen], maxLen)
			if !ok {
				bad = true
				break
			}
			if uint64(fl) > uint64(len(buf)-p) {
				break
			}
			spans = append(spans, frameSpan{p, int(fl)})
			p += int(fl)
		}
		if i := firstBadCRC(buf, spans); i >= 0 {
			spans, bad = spans[:i], true
		}
		for _, s := range spans {
			rec.Frames++
			if t := FrameType(binary.LittleEndian.Uint16(buf[s.off+frameOffType:])); t < FrameType(len(byType)) {
				byType[t]++
			} else {
				rec.FramesByType[t]++
			}
			pos = s.off + s.n
		}
		if bad || (eof && pos < len(buf)) {
			// A bad frame at pos, or an incomplete one at the end.
			return recoverSlow(io.MultiReader(bytes.NewReader(buf[pos:]), r), opts, base+int64(pos), counted())
		}
		if eof {
			rec.TailOffset = base + int64(pos)
			rec.ValidBytes = rec.TailOffset - HeaderSize
			rec.Tail = TailClean
			return *counted(), nil
		}
		// Keep the incomplete frame, and read on; a frame longer than
		// the buffer grows it.
		rest := copy(buf[:cap(buf)], buf[pos:])
		base += int64(pos)
		pos = 0
		need := block
		if rest >= frameHeaderLen {
			if fl, _, ok := frameHead(buf[:frameHeaderLen], maxLen); ok {
				need = max(need, int(fl))
			}
		}
		if cap(buf) < need {
			nb := make([]byte, need)
			copy(nb, buf[:rest])
			buf = nb
		}
		n, err := io.ReadFull(r, buf[rest:cap(buf)])
		buf = buf[:rest+n]
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return Recovery{}, err
		}
		eof = err != nil
	}
}

// recoverBlock is how much RecoverFrom reads at a time.
const recoverBlock = 4 << 20

type frameSpan struct{ off, n int }

// firstBadCRC returns the index of the first span in b whose CRC fails, or
// -1, checking halves of a large run on two goroutines.
func firstBadCRC(b []byte, spans []frameSpan) int {
	check := func(ss []frameSpan) int {
		for i, s := range ss {
			if !frameCRCValid(b[s.off : s.off+s.n]) {
				return i
			}
		}
		return -1
	}
	if len(spans) < 256 {
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

// recoverSlow recovers with a FrameReader. With done nil, r is the whole
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
	fr := NewFrameReader(src, opts)
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
