package framelog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"sync"
)

// mapMin is the smallest rest of a file RecoverFrom maps rather than
// reads: below it, mapping and unmapping cost more than the copies saved.
const mapMin = 16 << 20

// recoverFile is RecoverFrom over a regular file of at least minLen bytes
// from its offset on, where the platform can map it: it maps the file and
// recovers the mapped bytes with recoverBytes, then leaves the file's
// offset at its end, as reading it would. ok is false when it did nothing,
// and the file is to be read instead.
func recoverFile(f *os.File, opts *ReadOptions, minLen int64) (rec Recovery, ok bool, err error) {
	if strconv.IntSize < 64 {
		return Recovery{}, false, nil
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return Recovery{}, false, nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size()-off < minLen {
		return Recovery{}, false, nil
	}
	m, err := mapFile(f, fi.Size())
	if err != nil {
		return Recovery{}, false, nil
	}
	defer m.unmap()
	rec, err = recoverBytes(m.b[off:], opts, recoverBlock, func(lo, hi int) { m.drop(int(off)+lo, int(off)+hi) })
	if err == nil {
		// Past what was read, as reading would leave it, whatever was
		// appended since.
		_, err = f.Seek(fi.Size(), io.SeekStart)
	}
	return rec, true, err
}

// errMapFault reports a mapped file that lost bytes while it was read: it
// was truncated under the mapping. It wraps io.ErrUnexpectedEOF.
var errMapFault = fmt.Errorf("omega: the log file shrank while it was read: %w", io.ErrUnexpectedEOF)

// onFault turns a fault reading mapped memory, which a file truncated
// under its mapping causes, into errMapFault in *err. It is deferred by
// every goroutine that reads a mapping, after debug.SetPanicOnFault(true).
func onFault(err *error) {
	if r := recover(); r != nil {
		*err = faultOf(r)
	}
}

// faultOf returns errMapFault for r, what recover returned after a fault
// reading memory, and panics again with any other r.
func faultOf(r any) error {
	if _, ok := r.(interface{ Addr() uintptr }); ok {
		return errMapFault
	}
	panic(r)
}

// recoverBytes is Recover over the log in b, for a large b: this goroutine
// walks the frame headers a block of about block bytes at a time, while two
// others check the CRCs of the blocks walked before, so the work is spread
// over both cores. done, when not nil, is called with each block's byte
// range, in order, once its frames are known good. A block with a bad CRC,
// a bad frame header or a frame cut short hands the rest of b, from that
// frame on, to the frame reader, as RecoverFrom does.
func recoverBytes(b []byte, opts *ReadOptions, block int, done func(lo, hi int)) (rec Recovery, err error) {
	if block <= 0 {
		block = recoverBlock
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			rec, err = Recovery{}, faultOf(r)
		}
	}()

	hdr, herr := DecodeHeader(b[:min(len(b), HeaderSize)])
	if herr != nil || len(b) < HeaderSize {
		return recoverSlow(bytes.NewReader(b), opts, 0, nil)
	}
	maxLen := opts.maxFrameLen()
	var fc frameCount
	counted := func() *Recovery {
		r := Recovery{Header: hdr}
		fc.into(&r)
		return &r
	}

	type job struct {
		spans  []frameSpan
		count  frameCount // the spans' types, counted by the walk
		result chan int   // the index of the first bad CRC, or -1; buffered
		fault  error      // a fault reading the mapping, set before result
	}
	const inFlight = 4
	jobs := make(chan *job, inFlight)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			debug.SetPanicOnFault(true)
			for j := range jobs {
				// j is the main goroutine's again once its result is
				// sent: nothing of it is touched after.
				i, fault := -1, error(nil)
				func() {
					defer onFault(&fault)
					i = firstBadCRC(b, j.spans, false)
				}()
				j.fault = fault
				j.result <- i
			}
		})
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()

	var queue, free []*job
	// settle waits for the oldest job; it reports the offset where the
	// frame reader must take over, or -1.
	settle := func() (int, error) {
		j := queue[0]
		queue = queue[1:]
		i := <-j.result
		if j.fault != nil {
			return -1, j.fault
		}
		if i >= 0 {
			fc.add(b, j.spans[:i])
			return j.spans[i].off, nil
		}
		fc.merge(&j.count)
		if done != nil && len(j.spans) > 0 {
			last := j.spans[len(j.spans)-1]
			done(j.spans[0].off, last.off+last.n)
		}
		free = append(free, j)
		return -1, nil
	}
	pos := HeaderSize
	bad := false
	for !bad && len(b)-pos >= frameHeaderLen {
		var j *job
		if n := len(free); n > 0 {
			j, free = free[n-1], free[:n-1]
			j.spans, j.count = j.spans[:0], frameCount{}
		} else {
			j = &job{result: make(chan int, 1)}
		}
		start := pos
		for pos-start < block && len(b)-pos >= frameHeaderLen {
			fl, t, ok := frameHead(b[pos:pos+frameHeaderLen], maxLen)
			if !ok {
				bad = true
				break
			}
			if uint64(fl) > uint64(len(b)-pos) {
				bad = true // cut short: the frame reader tells torn from corrupt
				break
			}
			j.spans = append(j.spans, frameSpan{pos, int(fl)})
			j.count.one(t)
			pos += int(fl)
		}
		queue = append(queue, j)
		jobs <- j
		if len(queue) == inFlight {
			if at, err := settle(); err != nil || at >= 0 {
				if err != nil {
					return Recovery{}, err
				}
				return recoverSlow(bytes.NewReader(b[at:]), opts, int64(at), counted())
			}
		}
	}
	for len(queue) > 0 {
		if at, err := settle(); err != nil || at >= 0 {
			if err != nil {
				return Recovery{}, err
			}
			return recoverSlow(bytes.NewReader(b[at:]), opts, int64(at), counted())
		}
	}
	if pos < len(b) {
		// A bad frame at pos, or one cut short at the end.
		return recoverSlow(bytes.NewReader(b[pos:]), opts, int64(pos), counted())
	}
	rec = *counted()
	rec.TailOffset = int64(pos)
	rec.ValidBytes = rec.TailOffset - HeaderSize
	rec.Tail = TailClean
	return rec, nil
}
