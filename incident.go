package omega

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/omega-sheaf/omega/framelog"
	"github.com/omega-sheaf/omega/internal/digest"
)

// IncidentField names what differed in a replay incident (SPEC 7).
type IncidentField uint8

// The fields of SPEC 7, in the numbering the INCIDENT payload carries.
const (
	FieldKind            IncidentField = 1  // the recomputed kind differs from the BATCH's
	FieldWitnessHash     IncidentField = 2  // the recomputed witness hash differs
	FieldMergedStateHash IncidentField = 3  // the recomputed merged state hash differs
	FieldTraceRoot       IncidentField = 4  // the recomputed trace root differs
	FieldMember          IncidentField = 5  // a member resolves to no EVENT frame, or is out of order
	FieldReplaySeed      IncidentField = 6  // the BATCH's seed is not the replay seed
	FieldBinding         IncidentField = 7  // the log, snapshot or BATCH is bound to another checker
	FieldOrder           IncidentField = 8  // a batch id does not increase
	FieldFinalState      IncidentField = 9  // the final merged state hash is not the one expected
	FieldCreatedAt       IncidentField = 10 // the certificate's created_at_ns differs from the BATCH's
	FieldCertificate     IncidentField = 11 // a batch and the certificate chain do not pair up
)

var incidentFieldNames = [...]string{
	FieldKind:            "kind",
	FieldWitnessHash:     "witness_hash",
	FieldMergedStateHash: "merged_state_hash",
	FieldTraceRoot:       "trace_root",
	FieldMember:          "member",
	FieldReplaySeed:      "replay_seed",
	FieldBinding:         "binding",
	FieldOrder:           "order",
	FieldFinalState:      "final_state",
	FieldCreatedAt:       "created_at",
	FieldCertificate:     "certificate",
}

// String returns the field's SPEC 7 name ("member", "final_state", ...).
func (f IncidentField) String() string {
	if int(f) < len(incidentFieldNames) && incidentFieldNames[f] != "" {
		return incidentFieldNames[f]
	}
	return "field(" + strconv.Itoa(int(f)) + ")"
}

// Incident is a replay incident: the first difference between what a log
// recorded and what re-executing it gives (SPEC 7). It is data, not an
// error: [Replay] returns it in its report.
//
// Expected is what the log recorded and Observed what the replayer has; an
// integer is stored as its little-endian bytes at the start of the hash,
// the rest zero. ID is D("incident", the payload after it), so the same
// divergence always gets the same id.
type Incident struct {
	ID             Hash
	BatchID        uint64  // the BATCH where the difference shows; 0 before any batch
	EventID        EventID // the member, or the recomputed obstruction's event; else 0
	Field          IncidentField
	Expected       Hash
	Observed       Hash
	MetadataDigest Hash
}

// incidentLen is the length of an INCIDENT payload.
const incidentLen = 32 + 8 + 16 + 8 + 3*32

// AppendBinary appends the INCIDENT payload of inc to b:
//
//	incident_id [32] | divergence_batch_id u64 | divergence_event_id u128 |
//	field u8 | 7 zero bytes | expected [32] | observed [32] | metadata_digest [32]
//
// It writes inc.ID as it is; see [Incident.Seal].
func (inc *Incident) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, inc.ID[:]...)
	return inc.appendBody(b), nil
}

func (inc *Incident) appendBody(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, inc.BatchID)
	b = appendID(b, inc.EventID)
	b = append(b, byte(inc.Field), 0, 0, 0, 0, 0, 0, 0)
	b = append(b, inc.Expected[:]...)
	b = append(b, inc.Observed[:]...)
	return append(b, inc.MetadataDigest[:]...)
}

// Seal sets inc.ID to D("incident", the payload bytes after incident_id).
func (inc *Incident) Seal() {
	inc.ID = digest.Of(digest.Incident, inc.appendBody(make([]byte, 0, incidentLen-32)))
}

// DecodeIncident decodes an INCIDENT payload, which must fill b exactly,
// and checks its incident_id. Every refusal wraps ErrMalformedIncident.
func DecodeIncident(b []byte) (*Incident, error) {
	if len(b) != incidentLen {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedIncident, len(b), incidentLen)
	}
	inc := &Incident{
		BatchID: binary.LittleEndian.Uint64(b[32:]),
		EventID: readID(b[40:]),
		Field:   IncidentField(b[56]),
	}
	copy(inc.ID[:], b)
	if inc.Field < FieldKind || inc.Field > FieldCertificate {
		return nil, fmt.Errorf("%w: field %d", ErrMalformedIncident, inc.Field)
	}
	for i, p := range b[57:64] {
		if p != 0 {
			return nil, fmt.Errorf("%w: pad byte %d is %#x", ErrMalformedIncident, 57+i, p)
		}
	}
	copy(inc.Expected[:], b[64:])
	copy(inc.Observed[:], b[96:])
	copy(inc.MetadataDigest[:], b[128:])
	want := inc.ID
	inc.Seal()
	if inc.ID != want {
		return nil, fmt.Errorf("%w: incident_id %v, the payload hashes to %v", ErrMalformedIncident, want, inc.ID)
	}
	return inc, nil
}

// MarshalJSON writes the incident's JSON view (SPEC 7): {"incident_id",
// "divergence_batch_id","divergence_event_id","field","field_name",
// "expected","observed","metadata_digest"}, hashes in lowercase hex, ids
// as JSON integers.
func (inc *Incident) MarshalJSON() ([]byte, error) {
	b := append([]byte(nil), `{"incident_id":`...)
	b = appendHashString(b, inc.ID)
	b = appendUintField(b, "divergence_batch_id", inc.BatchID)
	b = append(b, `,"divergence_event_id":`...)
	b = inc.EventID.appendDecimal(b)
	b = appendUintField(b, "field", uint64(inc.Field))
	b = append(b, `,"field_name":"`...)
	b = append(b, inc.Field.String()...)
	b = append(b, '"')
	b = appendHashField(b, "expected", inc.Expected)
	b = appendHashField(b, "observed", inc.Observed)
	b = appendHashField(b, "metadata_digest", inc.MetadataDigest)
	return append(b, '}'), nil
}

// incidentMetadataDigest returns D("incident metadata", stateDigest ||
// schemaHash || bindingDigest || replay_seed u64 || logLength u64) (SPEC 7):
// the snapshot's state digest (zero without a snapshot), the log header's
// schema hash, the replayer's binding digest, the replay seed and the byte
// length of the log, header included.
func incidentMetadataDigest(stateDigest, schemaHash, bindingDigest Hash, seed, logLength uint64) Hash {
	var b [3*32 + 16]byte
	copy(b[:], stateDigest[:])
	copy(b[32:], schemaHash[:])
	copy(b[64:], bindingDigest[:])
	binary.LittleEndian.PutUint64(b[96:], seed)
	binary.LittleEndian.PutUint64(b[104:], logLength)
	return digest.Of(digest.IncidentMetadata, b[:])
}

// WriteFile records inc in directory dir (created when missing) as SPEC
// 9 lays it out: its JSON view as <incident_id hex>.json, and an INCIDENT
// frame appended to incidents.omega, a frame log with header hdr (created
// when missing, recovered first otherwise). Both are synced before it
// returns.
func (inc *Incident) WriteFile(dir string, hdr framelog.Header) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("omega: incident directory: %w", err)
	}
	js, _ := inc.MarshalJSON()
	if err := writeTemp(dir, hex.EncodeToString(inc.ID[:])+".json", append(js, '\n')); err != nil {
		return fmt.Errorf("omega: writing incident: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("omega: writing incident: %w", err)
	}
	w, err := framelog.Open(filepath.Join(dir, "incidents.omega"), hdr, &framelog.WriterOptions{Sync: framelog.SyncAlways})
	if err != nil {
		return err
	}
	p, _ := inc.AppendBinary(make([]byte, 0, incidentLen))
	if _, err := w.Append(framelog.FrameIncident, p); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}
