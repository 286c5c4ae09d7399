-- Usage in ONE table at the grain of (key, UTC day, public model, provider), replacing the
-- monthly table (llm_usage) and the per-day table without model (llm_usage_daily): a charge is
-- then one upsert of one table, atomic on its own, instead of a transaction over two tables
-- (four round trips per batch: at one call at a time, the gateway's added latency and CPU per
-- call had grown by a fifth). A month is the sum of its days ('YYYY-MM-01'..'YYYY-MM-31', the
-- primary key's prefix for a key), so the days add up to the month by construction.
--
-- Not additive: replicas of the previous version write the dropped tables. Upgrade llm-gateway
-- by stopping both replicas, then starting the new ones (README, Upgrades).
CREATE TABLE llm_usage_by_day (
    key_id            TEXT   NOT NULL,
    day               TEXT   NOT NULL,
    model             TEXT   NOT NULL,
    provider          TEXT   NOT NULL,
    user_id           TEXT   NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost_nano_usd     BIGINT NOT NULL DEFAULT 0,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (key_id, day, model, provider)
);

-- Each month's row per (key, model, provider) is kept whole — quotas, notices and /v1/usage read
-- months, so they read exactly what they did — on the key's last day with usage that month in
-- llm_usage_daily (the 1st when there is none: months older than that table). The per-day split
-- of usage charged before this upgrade is not known per model, so the days of the upgrade month
-- before it show that usage on one day; every day after it is exact.
INSERT INTO llm_usage_by_day (key_id, day, model, provider, user_id, requests, prompt_tokens,
                              completion_tokens, cost_nano_usd, updated_at)
SELECT u.key_id,
       COALESCE((SELECT MAX(d.day) FROM llm_usage_daily d
                 WHERE d.key_id = u.key_id AND d.day >= u.period || '-01'
                   AND d.day <= u.period || '-31'),
                u.period || '-01'),
       u.model, u.provider, u.user_id, u.requests, u.prompt_tokens, u.completion_tokens,
       u.cost_nano_usd, u.updated_at
FROM llm_usage u;

DROP TABLE llm_usage_daily;
DROP TABLE llm_usage;
ALTER TABLE llm_usage_by_day RENAME TO llm_usage;

-- A customer's month over all their keys (quota notices, /v1/usage's tokens_remaining).
CREATE INDEX llm_usage_user_day ON llm_usage (user_id, day);
