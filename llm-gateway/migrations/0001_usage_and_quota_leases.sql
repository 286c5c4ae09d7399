-- Usage per API key, calendar month (UTC), public model and provider; written in batches.
-- Costs are integers in nano-dollars (1e-9 USD) so sums are exact.
CREATE TABLE llm_usage (
    key_id            TEXT   NOT NULL,
    period            TEXT   NOT NULL,
    model             TEXT   NOT NULL,
    provider          TEXT   NOT NULL,
    user_id           TEXT   NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nano_usd     BIGINT NOT NULL DEFAULT 0,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (key_id, period, model, provider)
);

-- Quota granted to gateway replicas, per key and window: kind 'tokens' with window 'YYYY-MM',
-- kind 'requests' with window = minutes since the Unix epoch. A replica reserves blocks with a
-- single guarded UPDATE (reserved never exceeds the limit) and spends them from memory.
-- last_grant is what the latest UPDATE granted (its RETURNING value).
CREATE TABLE llm_quota_leases (
    key_id     TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    window_id  TEXT   NOT NULL,
    reserved   BIGINT NOT NULL DEFAULT 0,
    last_grant BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (key_id, kind, window_id)
);

CREATE INDEX llm_quota_leases_updated_at ON llm_quota_leases (updated_at);
