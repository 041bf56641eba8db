package omega

import "io"

// RecoverFrom is [Recover] over a stream: it reads r to its end through a
// [FrameReader], so a log of any size is checked in the reader's buffer, and
// reports the same [Recovery]. The error is the [*HeaderError] of a bad
// header or an error of r.
func RecoverFrom(r io.Reader, opts *ReadOptions) (Recovery, error) {
	cr := &countingReader{r: r}
	fr := NewFrameReader(cr, opts)
	hdr, err := fr.Header()
	if err != nil {
		return Recovery{}, err
	}
	rec := Recovery{Header: hdr, TornHeader: fr.TornHeader(), FramesByType: map[FrameType]int{}}
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
			rec.Err, rec.Tail = fe, TailTorn
			if fe.Err == ErrCorrupt {
				rec.Tail = TailCorrupt
			}
			break
		}
		rec.ValidBytes = end - HeaderSize
	}
	// What the reader left unread still counts as the tail.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return Recovery{}, err
	}
	rec.TailOffset = end
	rec.TailBytes = cr.n - end
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
