"""Every limit of the dashboard, in one place (the read models' own are in
journal_core.limits). Units are the last word of each name."""

FEED_POLL_S = 1.0  # a live feed sleeps on the change watcher, and looks at least this often
FEED_KEEPALIVE_S = 15.0  # an idle stream sends a comment this often (proxies close silent ones)
FEED_STREAM_S_MAX = 600.0  # a stream ends after this long; the browser reconnects where it was
FEED_STREAMS_MAX = 32  # live streams one server serves at once (then 503, and a retry)
FEED_RETRY_MS = 1000  # how long a browser waits before it reconnects a stream
FEED_BATCH_MAX = 200  # records one poll reads at most
FEED_ROWS_SHOWN = 200  # rows the feed page keeps on screen as new ones arrive
FEED_PANEL_ROWS = 12  # rows of the board's live panel
SESSION_MAX_AGE_S = 7 * 24 * 3600  # a login (and the name asked once) lasts this long
PERSON_NAME_CHARS_MAX = 64
FORM_BYTES_MAX = 256 * 1024  # a posted form larger than this is refused (413)
FORM_FIELDS_MAX = 16
LIST_PAGE_ROWS = 50  # rows of a memory, message or handoff page
SEARCH_HITS_SHOWN = 50
RECIPIENTS_SHOWN_MAX = 200  # known actors offered as recipients of a message
UI_PORT_DEFAULT = 8766
