package omega

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Fingerprint files. The sequencer drops an exact redelivery of an accepted
// event by comparing 64 bits of its digest with those kept, per accepted
// id, in the order of the State's history (fingerprints). A snapshot holds
// the State but no digest, so beside each snapshot file <seq>.omega the
// kernel writes <seq>.fp, the fingerprints of the snapshot's known ids in
// the order the snapshot lists them (ascending id), which is the order a
// State loaded from it has:
//
//	magic "OMEGAFP1" | merged_state_hash [32] | count u64 | count x u64
//
// written whole before the snapshot file. A kernel started from a snapshot
// with its fingerprint file drops redeliveries of events accepted before
// it as well; without one (an older snapshot, a damaged file), such a
// redelivery reaches the checker and is obstructed by 1002.

const fpMagic = "OMEGAFP1"

func (k *Kernel) fingerprintPath(seq uint64) string {
	return strings.TrimSuffix(k.snapshotPath(seq), ".omega") + ".fp"
}

// view returns fingerprints that read what f holds now: those of the
// positions already set, which never change, while f goes on growing.
func (f *fingerprints) view() fingerprints {
	return fingerprints{base: f.base, chunks: append([][]uint64(nil), f.chunks...)}
}

func (f *fingerprints) at(p uint32) uint64 {
	if p < f.base {
		return 0
	}
	i := p - f.base
	c := int(i >> fpChunkBits)
	if c >= len(f.chunks) {
		return 0
	}
	return f.chunks[c][i&(1<<fpChunkBits-1)]
}

// encodeFingerprints returns the fingerprint file of the snapshot of a
// State with merged state hash h and known ids known (ascending, with
// their positions): for each, its fingerprint in fps, or 0 when fps has
// none.
func encodeFingerprints(h Hash, known []knownAt, fps fingerprints, pace func()) []byte {
	b := make([]byte, 0, len(fpMagic)+32+8+8*len(known))
	b = append(b, fpMagic...)
	b = append(b, h[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(known)))
	for i, k := range known {
		b = binary.LittleEndian.AppendUint64(b, fps.at(k.pos))
		if (i+1)%paceSpan == 0 {
			pace()
		}
	}
	return b
}

// decodeFingerprints reads the fingerprint file of snap, whose State was
// just loaded (so its positions are the file's order), into fingerprints
// from position 0.
func decodeFingerprints(b []byte, snap *Snapshot) (fingerprints, error) {
	n := snap.State.KnownCount()
	switch {
	case len(b) < len(fpMagic)+40 || string(b[:len(fpMagic)]) != fpMagic:
		return fingerprints{}, errors.New("not a fingerprint file")
	case Hash(b[len(fpMagic):len(fpMagic)+32]) != snap.State.MergedStateHash():
		return fingerprints{}, errors.New("made for another snapshot")
	case binary.LittleEndian.Uint64(b[len(fpMagic)+32:]) != uint64(n) || len(b) != len(fpMagic)+40+8*n:
		return fingerprints{}, fmt.Errorf("does not hold %d fingerprints", n)
	}
	var f fingerprints
	p := b[len(fpMagic)+40:]
	for i := 0; i < n; i += 1 << fpChunkBits {
		c := make([]uint64, 1<<fpChunkBits)
		for j := range min(1<<fpChunkBits, n-i) {
			c[j] = binary.LittleEndian.Uint64(p[8*(i+j):])
		}
		f.chunks = append(f.chunks, c)
	}
	return f, nil
}

// loadFingerprints returns the fingerprints of snapshot seq, or ones that
// start after its State when its file is missing or does not fit.
func (k *Kernel) loadFingerprints(seq uint64, snap *Snapshot) fingerprints {
	b, err := k.fsys.ReadFile(k.fingerprintPath(seq))
	if err == nil {
		f, err := decodeFingerprints(b, snap)
		if err == nil {
			return f
		}
		k.metric("snapshot.fingerprints_unreadable", 1, map[string]string{"segment": fmt.Sprint(seq), "error": err.Error()})
	}
	return fingerprints{base: uint32(snap.State.KnownCount())}
}

// writeFingerprints writes the fingerprint file of job's snapshot, whose
// State has the known ids known.
func (k *Kernel) writeFingerprints(job snapJob, known []knownAt, pace func()) error {
	p := k.fingerprintPath(job.seq)
	return writeTempPaced(k.fsys, filepath.Dir(p), filepath.Base(p), encodeFingerprints(job.snap.State.MergedStateHash(), known, job.fps, pace), pace)
}
