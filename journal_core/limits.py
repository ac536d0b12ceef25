"""Every limit of the store, in one place. Units are the last word of each name."""

ENVELOPE_VERSION = 1
STORE_FORMAT_VERSION = 1

# Records
payload_inline_bytes_max = 64 * 1024
record_line_bytes_max = 256 * 1024
blob_bytes_max = 16 * 1024 * 1024
summary_chars_max = 500
reason_chars_max = 2000  # doctor --redact --reason
redact_seqs_max = 4096  # seqs named by one redaction note (its payload stays under 64 KiB)
item_id_chars_max = 64
actor_chars_max = 128
txn_records_max = 10_000

# Checkpoints
checkpoints_kept_verified = 2

# Segments
segment_bytes_max_default = 8 * 1024 * 1024
segment_name_digits = 12
segment_read_chunk_bytes = 1024 * 1024

# Lock
lock_wait_s_default = 5.0

# Reader
dup_window_records = 131_072  # a power of two: the window is a ring indexed by seq
sparse_index_every_records = 64
unseen_positions_max = 4096  # positions of the next read_unseen pages a store remembers

# Entities
title_chars_max = 200
text_chars_max = 60_000
tags_max = 32
tag_chars_max = 64
plan_steps_max = 200
claim_target_chars_max = 512
claim_ttl_s_min = 1
claim_ttl_s_max = 7 * 24 * 3600
claim_ttl_s_default = 900

# Federation
import_chunk_records = 500

# Pagination (every list an agent can ask for is paginated)
page_items_max = 200
unseen_events_max = 1000
search_hits_max = 100

# File reservations (paths.py)
file_path_components_max = 64
glob_range_chars_max = 256
claim_targets_max = 32
step_ref_chars_max = 80  # a blocker: "s3" or "<plan_id>/<step_id>"
step_blockers_max = 32
plan_priority_min = -1000
plan_priority_max = 1000

# Idempotent retries (request_id)
request_id_chars_max = 64
requests_kept_min = 100_000  # a repeat is recognized among at least this many mutations ...
request_window_s = 24 * 3600  # ... or for at least this long, whichever keeps more
requests_kept_max = 1_000_000  # and never more than this many (memory bound)

# Lock
lock_retake_max = 3  # a lock file found replaced is retaken at most this many times

# Reading the local journal
segment_read_all_bytes_max = 64 * 1024 * 1024  # one read of a follower catching up
scan_chunk_records = 1000  # records a scan decodes before it yields
scan_first_chunk_bytes = 64 * 1024  # a scan's first read, then doubling (to a chunk)
scan_first_records = 64  # a scan's first yield, then doubling (to scan_chunk_records)

# File reservations (paths.py)
path_patterns_cached = 4096  # parsed file targets kept (each a small frozen value)

# The work queue (work_queue.py)
blockers_shown_max = 8  # reasons an answer lists before "and N more"
dependency_walk_max = 20_000  # edges a cycle check may follow
ready_page_max = 100

# Cursors
cursor_file_name_bytes_max = 200  # well under the 255 bytes of a file name
cursor_file_bytes_max = 4096

# Projections (projection.py)
projector_flush_s = 10.0  # how long close() waits for queued projection writes
projector_retry_s = 0.05  # a busy projection lock is tried again after this

# Reads
read_refresh_records_max = 200_000  # a read catches up at most this much, then says stale

# Group commit (commit.py)
commit_batch_max = 64  # mutations one lock hold commits together at most
records_page_max = 1000  # records_after (tail) answers at most this many at once
links_reported_max = 50  # symbolic links doctor lists at most

# Federation
slice_copy_bytes = 1024 * 1024
import_clock_skew_s = 5  # an imported claim's expiry may exceed ts + ttl_s by this much
progress_every_records = 500

# Compact rows and events (queries.py)
row_title_chars_max = 120
event_summary_chars_max = 160
snippet_chars_max = 160
search_query_chars_max = 500
search_terms_max = 16
paths_query_max = 64
history_revs_max = 1000

# The work briefing: it must stay small whatever the size of the store.
briefing_unseen_events_max = 8
briefing_unseen_scan_seqs_max = 20_000  # unseen_count is a lower bound past this many seqs
briefing_claims_max = 10
briefing_plans_max = 3
briefing_plan_steps_max = 3
briefing_memory_max = 5
briefing_ready_max = 3
briefing_list_max = 3
briefing_title_chars_max = 64
briefing_summary_chars_max = 72
briefing_target_chars_max = 80
claim_max_s_max = 30 * 24 * 3600  # keepalive extends a claim for at most this long
unseen_page_default = 20  # read_unseen's default page: it must fit one turn of an agent
unseen_summary_chars_max = 100

# Staying in touch (watch.py, the wait tool, the hook and the git guard)
wait_timeout_s_default = 20.0  # what `wait` waits when not told
wait_timeout_s_max = 25.0  # clients cut tool calls at ~25-60 s: a wait always ends before
wait_progress_s = 5.0  # a waiting tool call reports progress this often (when asked to)
watch_poll_s = 1.0  # where inotify is missing, the journal is looked at this often
watch_close_s = 2.0  # how long closing a watcher waits for its thread
inotify_read_bytes = 64 * 1024  # one read of the inotify fd
hook_chars_max_default = 400  # the hook's block of text, at most
hook_unseen_scan_seqs_max = 2000  # the hook counts unseen events among this many seqs at most
hook_claim_expiring_s = 120  # a claim with less time left than this is "about to expire"
hook_items_max = 3  # handoffs, messages, claims the hook names (the rest are counted)
guard_paths_max = 10_000  # paths of one commit or push the git guard checks at most
guard_holders_shown_max = 10  # held paths the guard's message lists before "and N more"
git_command_s = 30.0  # a git command run by the guard or the hook installer, at most

# The dashboard's read models (board.py, claim_overview.py, events.py, revisions.py,
# supersession.py): every page a person can ask for is bounded like an agent's.
board_plans_page_max = 50  # plans (swimlanes) on one page of the board
claims_page_max = 100  # claims in one section of the claims overview
claim_expiring_soon_s = 120  # an active claim with less time left than this is expiring soon
claim_recent_s = 3600  # an ended claim (expired, taken over, released) stays "recent" this long
events_page_max = 200  # events on one page of the feed
events_scan_seqs_max = 20_000  # seqs one feed page reads back at most (then offers "older")
events_window_seqs_min = 256  # a backward page of the feed reads at least this many seqs per window
revisions_page_max = 100  # revisions of an entity on one page of its history
history_scan_seqs_max = 50_000  # seqs one page of an entity's history reads back at most
history_window_seqs_min = 512  # the first pass of a history page reads at least this many seqs
revision_changes_max = 100  # changed fields listed for one revision (then "and N more")
revision_value_chars_max = 2000  # a changed value is shown up to this many characters
revision_text_lines_max = 200  # lines of a text field's line diff
revision_text_diff_chars_min = 120  # longer strings (or with a line break) get a line diff
revision_text_diff_context_lines = 1  # unchanged lines shown around a change
supersession_chain_max = 20  # older items followed back from one memory item

# PostgreSQL (pg_connect.py, pg_journal.py, pg_backend.py)
pg_connections_max = 4  # connections one open store holds at most: the pool and the listener
pg_connect_s = 5.0  # a connection attempt gives up after this long
pg_pool_wait_s = 5.0  # a caller waits this long for a free connection of the pool
pg_statement_s = 30.0  # a statement (never the lock wait) is cancelled after this long
pg_read_chunk_records = 1000  # records one query of a follower or a scan reads at most
pg_checkpoint_every_records = 10_000  # a checkpoint is due after this many records
pg_store_name_chars_max = 48  # a store name (its schema) leaves room for its NOTIFY channel
pg_listen_retry_s = 1.0  # a lost LISTEN connection is made again this often

# The MCP server and the CLI (server/)
error_values_shown_max = 8  # allowed values an argument error lists
tail_poll_s = 0.25  # tail -f looks at least this often (a commit wakes it at once)
tail_lines_default = 20  # lines `tail` shows when not told
guard_push_input_bytes_max = 1024 * 1024  # pre-push lines read from stdin, at most
hook_input_bytes_max = 1024 * 1024  # a client's hook input read from stdin, at most
http_backlog = 128  # connections the HTTP server's socket queues
http_shutdown_grace_s = 2  # open streams (the live feed) are cut after this long at shutdown
render_summary_chars_max = 160  # a summary shown in a table row, at most
context_page_chars = 4000  # a handoff's context is served in pages of this many characters
