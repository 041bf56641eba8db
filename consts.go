package omega

// Constants of the schema and the checker's limits.
const (
	// SchemaVersion is the version of the event schema this package implements.
	SchemaVersion = 1
	// SchemaDescriptor is the exact text whose digest is the SchemaHash of
	// schema version 1 (SPEC 4): 13 lines, each ending in a newline.
	SchemaDescriptor = "omega.event/1\n" +
		"event_id u128\n" +
		"node_id u32\n" +
		"stream_id u16\n" +
		"lamport u64\n" +
		"mono_ts_ns u64\n" +
		"event_kind u16\n" +
		"flags u16\n" +
		"deps_count u16\n" +
		"payload_len u32\n" +
		"payload_hash blake3-256\n" +
		"deps u128[deps_count]\n" +
		"payload u8[payload_len]\n"
	// MaxBatchContents is the largest number of distinct contents a batch may
	// hold (SPEC 4). A larger batch is refused with [ErrBatchTooLarge].
	MaxBatchContents = 1 << 20
	// MaxWorkers is the most workers a [Checker] or [VerifyChain] runs on.
	// Each keeps a few kilobytes of scratch, so an absurd count is refused
	// rather than allocated.
	MaxWorkers = 1024
)
