"""Every limit of the store, in one place. Units are the last word of each name."""

ENVELOPE_VERSION = 1
STORE_FORMAT_VERSION = 1

# Records (SPEC §3)
payload_inline_bytes_max = 64 * 1024
record_line_bytes_max = 256 * 1024
blob_bytes_max = 16 * 1024 * 1024
summary_chars_max = 500
reason_chars_max = 2000  # doctor --redact --reason
redact_seqs_max = 4096  # seqs named by one redaction note (its payload stays under 64 KiB)
item_id_chars_max = 64
actor_chars_max = 128
txn_records_max = 10_000

# Checkpoints (SPEC §8)
checkpoints_kept_verified = 2

# Segments (SPEC §4)
segment_bytes_max_default = 8 * 1024 * 1024
segment_name_digits = 12
segment_read_chunk_bytes = 1024 * 1024

# Lock (SPEC §5)
lock_wait_s_default = 5.0

# Reader
dup_window_records = 131_072
sparse_index_every_records = 64
unseen_positions_max = 4096  # positions of the next read_unseen pages a store remembers

# Entities (SPEC §10)
title_chars_max = 200
text_chars_max = 60_000
tags_max = 32
tag_chars_max = 64
plan_steps_max = 200
claim_target_chars_max = 512
claim_ttl_s_min = 1
claim_ttl_s_max = 7 * 24 * 3600
claim_ttl_s_default = 900

# Federation (SPEC §12)
import_chunk_records = 500

# Pagination (every list an agent can ask for is paginated)
page_items_max = 200
unseen_events_max = 1000
search_hits_max = 100
