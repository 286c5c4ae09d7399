//! LLM gateway: providers, routing, streaming, usage and quotas (see issue 3).
