-- Runs once when the PostgreSQL volume is created: llm-gateway's database beside promo-service's.
CREATE DATABASE iafactory_llm OWNER iafactory;
