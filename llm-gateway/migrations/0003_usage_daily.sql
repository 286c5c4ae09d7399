-- Usage per API key and calendar day (UTC), for the customer account's daily chart. Written by
-- the same batched writer as llm_usage, in the same transaction, so a month's days always add
-- up to its llm_usage rows. One row per key and day (no model, no provider: the per-model
-- breakdown is monthly); `day` is 'YYYY-MM-DD', the day the call started, always inside the
-- call's month (llm_usage.period), so a month's days are the range 'YYYY-MM-01'..'YYYY-MM-31'.
CREATE TABLE llm_usage_daily (
    key_id            TEXT   NOT NULL,
    day               TEXT   NOT NULL,
    user_id           TEXT   NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nano_usd     BIGINT NOT NULL DEFAULT 0,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);

-- A customer's month over all their keys (the quota notices after every written batch, and
-- /v1/usage's tokens_remaining) reads by customer: without this index, a full scan of llm_usage.
CREATE INDEX llm_usage_user_period ON llm_usage (user_id, period);
