-- The request log (issue 16, item 4): one row per call that passed authentication, written in
-- batches off the request path by crate::request_log. No prompt or completion text.
-- Keyset pagination reads (at_ms, id) newest first; filters by customer read (user_id, at_ms).
-- Pruned by age (REQUEST_LOG_RETENTION_DAYS) through the at_ms index.
CREATE TABLE llm_request_log (
    id                TEXT    NOT NULL PRIMARY KEY,
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
    error_code        TEXT    NOT NULL
);

CREATE INDEX llm_request_log_at ON llm_request_log (at_ms, id);
CREATE INDEX llm_request_log_user_at ON llm_request_log (user_id, at_ms, id);
