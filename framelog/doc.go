// Package framelog reads and writes the .omega frame log of SPEC 5, the
// file format under omega's journals, certificate stores and snapshots.
//
// Most programs never import it: [github.com/omega-sheaf/omega.OpenJournal], [github.com/omega-sheaf/omega.OpenCertStore]
// and the replayer open, recover, read and append logs for them. It is for
// tools that look at the frames themselves, and for programs that keep
// frames of their own (the application types 0x8000-0xFFFF) beside omega's.
// Its format errors wrap omega.ErrFormat, so one errors.Is picks a
// response for an error of either package (see omega's Errors section).
//
// An .omega file is a 64-byte header followed by frames, back to back, with
// no padding and no index:
//
//	+--------------------+---------+---------+-----+---------+
//	| header (64 bytes)  | frame 0 | frame 1 | ... | frame n |
//	+--------------------+---------+---------+-----+---------+
//	0                    64
//
// The header, all integers little-endian:
//
//	offset  size  field
//	     0     8  magic          4F 4D 45 47 41 00 01 00 ("OMEGA", 0, 1, 0)
//	     8     2  schema_version u16
//	    10     1  endian_flag    1 (little-endian)
//	    11     1  hash_alg_id    1 (BLAKE3)
//	    12    14  reserved       zero
//	    26    32  schema_hash
//	    58     6  reserved       zero
//
// A frame:
//
//	+-------------+--------------+------------+------------+---------------------+
//	| frame_len   | frame_crc32  | frame_type | reserved   | payload             |
//	| u32         | u32          | u16        | u16 = 0    | frame_len-12 bytes  |
//	+-------------+--------------+------------+------------+---------------------+
//	0             4              8            10           12          frame_len
//	                             |<------- covered by frame_crc32 ---------------->|
//
// frame_len counts the whole frame, its 12-byte frame header included, so
// it is at least 12; readers also refuse a frame_len over the configured
// maximum (64 MiB by default). frame_crc32 is CRC-32/IEEE (hash/crc32's
// IEEE polynomial) over frame_type, reserved and payload as encoded. Frame
// types: 1 EVENT, 2 BATCH, 3 CERT, 4 SNAPSHOT, 5 STATE, 6 INCIDENT;
// 0x8000-0xFFFF belong to the embedding program; 0 and 7-0x7FFF are invalid.
//
// The layout constants (HeaderSize, FrameHeaderLen, the frame types, and
// the magic and field offsets in format.go) are frozen wire format: files
// written by one build are read by every other, and by other
// implementations. Never change them; a new layout needs a new magic.
//
// # Recovery
//
// The valid prefix of a log ends at the first bad frame: a frame_len below
// 12 or over the maximum, a frame_len running past the end of the input, a
// CRC that fails, or a CRC that holds over an invalid type or a non-zero
// reserved field. The bad frame is then classified:
//
//   - a CRC that holds means the bytes are what some writer meant to write,
//     so a bad type or reserved value is always corruption ([ErrCorrupt]);
//   - otherwise the bad frame is a torn tail ([ErrTornTail], the normal
//     result of a crash, including a last write that came back zeroed or as
//     garbage) when no valid frame starts at any later offset up to the end
//     of the input, and corruption when one does: data follows that must not
//     be dropped silently.
//
// The scan for a later frame checks the cheap fields first (length bounds,
// fit within the input, type, reserved) and computes a CRC only for
// candidates that pass, so garbage costs a few instructions per byte. A
// candidate's CRC costs the same whatever length it claims: it follows from
// CRCs of the input's prefixes, kept every 512 bytes from the first
// candidate on. So even a crafted input whose every few bytes pass the cheap
// checks and claim to run to its end is scanned in time linear in its
// length (about 1.4 s for 64 MiB of them); the scan stops at the first
// valid frame.
//
// Known limit: frame_len is outside the CRC. A flipped bit in the length of
// the very last frame makes it run past the end of the file or fail its CRC
// with nothing valid after it, which is exactly what a torn write looks like:
// the frame is reported as a torn tail and dropped (truncated when the log is
// opened for append). Any damage inside the last frame behaves the same way.
// Damage in an earlier frame is always caught as corruption, because the
// frames after it are still valid. The header carries no checksum either: a
// flipped bit in schema_version or schema_hash gives a different header,
// which binding checks refuse ([ErrSchemaMismatch], a binding error:
// it wraps omega.ErrBindingMismatch).
//
// # Torn headers
//
// A file shorter than 64 bytes whose bytes are a prefix of a valid header or
// all zero (the empty file included), or whose 64 header bytes are all zero
// and are followed by nothing but zero bytes, is a creation cut short by a
// crash: the header and the directory are synced before the first append
// returns, so such a file holds no acknowledged frame. Readers report it as
// empty with a torn header ([Reader.TornHeader]), not as an error:
// [Recover] puts the torn tail at offset 0 and counts the whole file as
// malformed tail bytes. [Open] truncates such a file and writes the
// header anew.
//
// A zeroed header followed by any non-zero byte cannot come from a crash, as
// no frame is written before the header is durable: it is a damaged header,
// refused with a [*HeaderError] (field "zeroed", wrapping [ErrBadHeader]) by
// every reader, by Recover and by Open, which leaves the file
// untouched, so the frames after it can still be salvaged by hand. Any other
// short or malformed header is refused with ErrBadHeader too; every
// reader applies these rules through one function.
package framelog
