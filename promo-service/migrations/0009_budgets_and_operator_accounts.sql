-- Margin protection and operator account management (issue 16). Same statements on SQLite and
-- PostgreSQL.

-- A package's monthly upstream-cost budget per customer, in nano-USD (the unit llm-gateway's
-- usage rows record); NULL: no budget. Enforced by llm-gateway like the token quota.
ALTER TABLE packages ADD COLUMN monthly_cost_budget_nano_usd BIGINT
    CHECK (monthly_cost_budget_nano_usd IS NULL OR monthly_cost_budget_nano_usd > 0);

-- Seeded model lists: cheap models for the small packages, more for the larger ones, every
-- model for Premium (empty list). Only packages still at the seed's "every model" are changed:
-- an operator's own list is kept.
UPDATE packages SET allowed_models =
    'llama-3.1-8b,llama-3.3-70b,gpt-4o-mini,gemini-2.0-flash,mistral-small,deepseek-chat,text-embedding-3-small,mistral-embed,bge-large-en-v1.5'
    WHERE id = 'starter' AND allowed_models = '';
UPDATE packages SET allowed_models =
    'llama-3.1-8b,llama-3.3-70b,gpt-4o-mini,gemini-2.0-flash,mistral-small,deepseek-chat,command-r,claude-3-5-haiku,text-embedding-3-small,text-embedding-3-large,mistral-embed,bge-large-en-v1.5,embed-v4.0,gemini-embedding-001'
    WHERE id = 'dev' AND allowed_models = '';
UPDATE packages SET allowed_models =
    'llama-3.1-8b,llama-3.3-70b,gpt-4o-mini,gpt-4o,gemini-2.0-flash,mistral-small,deepseek-chat,command-r,claude-3-5-haiku,claude-sonnet-4,text-embedding-3-small,text-embedding-3-large,mistral-embed,bge-large-en-v1.5,embed-v4.0,gemini-embedding-001'
    WHERE id = 'business' AND allowed_models = '';

-- Operators can be deactivated (never deleted: the audit log names them). A deactivated
-- operator cannot sign in and their sessions are revoked in the same transaction.
ALTER TABLE operators ADD COLUMN deactivated_at BIGINT;
