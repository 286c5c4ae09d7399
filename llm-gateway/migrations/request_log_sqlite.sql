-- The request log's own SQLite file (see store::request_log_url): the table of 0005_request_log.sql
-- (the PostgreSQL one), stored by its keyset order. WITHOUT ROWID with the primary key (at_ms, id)
-- keeps the rows in the order pages and pruning read them, so one b-tree serves both and a row
-- costs two b-tree inserts (this and the per-customer index) instead of four (rowid table, id
-- key, time index, customer index). Ids are unique on their own (UUIDv7); a batch retried after
-- a lost commit answer carries the same (at_ms, id) and is skipped by ON CONFLICT DO NOTHING.
CREATE TABLE llm_request_log (
    id                TEXT    NOT NULL,
    at_ms             BIGINT  NOT NULL,
    user_id           TEXT    NOT NULL,
    key_id            TEXT    NOT NULL,
    key_prefix        TEXT    NOT NULL,
    kind              TEXT    NOT NULL,
    model             TEXT    NOT NULL,
    provider          TEXT    NOT NULL,
    upstream_model    TEXT    NOT NULL,
    prompt_tokens     BIGINT  NOT NULL,
    completion_tokens BIGINT  NOT NULL,
    cost_nano_usd     BIGINT  NOT NULL,
    latency_ms        BIGINT  NOT NULL,
    ttft_ms           BIGINT,
    attempts          BIGINT  NOT NULL,
    fallbacks         BIGINT  NOT NULL,
    status            TEXT    NOT NULL,
    error_code        TEXT    NOT NULL,
    PRIMARY KEY (at_ms, id)
) WITHOUT ROWID;

CREATE INDEX llm_request_log_user_at ON llm_request_log (user_id, at_ms, id);
