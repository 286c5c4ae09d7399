//! The OpenAPI 3.1 document served at `/openapi.json`, built once at start.
//!
//! Kept true by tests: every route the router serves is documented and every documented operation
//! is served (`tests/api/ops.rs`), and schemathesis checks answers against these schemas.

use serde_json::{Map, Value, json};

/// A documented operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    tag: &'static str,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (u16, &'static str, Value),
    errors: &'static [u16],
    security: Option<&'static str>,
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": {"type": "string"}
    })
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Invalid input (malformed JSON, wrong types, missing fields, invalid values).",
        401 => "Missing or invalid credentials.",
        403 => "Not allowed.",
        404 => "Unknown resource.",
        409 => "Conflicts with the current state.",
        413 => "Request body too large.",
        415 => "The body is not JSON.",
        429 => "Rate limit or quota reached; see Retry-After.",
        499 => "The client went away.",
        502 => "Every upstream provider failed.",
        503 => "A backend is down or overloaded; see Retry-After.",
        504 => "Took too long.",
        _ => "Error.",
    }
}

/// Statuses any route may answer: the edge's time limit and shedding, backend outages.
const ALWAYS: &[u16] = &[503, 504];

fn operation(op: &Op) -> Value {
    let mut responses = Map::new();
    let (status, description, content) = &op.ok;
    let mut ok = json!({"description": description, "content": content});
    if op.path.starts_with("/v1/chat") {
        ok["headers"] = json!({
            "x-iaf-provider": {"description": "Provider that served the answer.", "schema": {"type": "string"}},
            "x-iaf-latency-ms": {"description": "Gateway latency in milliseconds (non-streaming).", "schema": {"type": "integer"}},
            "x-iaf-cost-usd": {"description": "Cost of the call in US dollars (non-streaming).", "schema": {"type": "string"}}
        });
    }
    responses.insert(status.to_string(), ok);
    let error_schema = if op.path.starts_with("/v1/") {
        schema_ref("OpenAiError")
    } else {
        schema_ref("Error")
    };
    for s in op.errors.iter().chain(ALWAYS) {
        responses.insert(
            s.to_string(),
            json!({
                "description": error_description(*s),
                "content": json_content(error_schema.clone()),
            }),
        );
    }
    if op.path == "/readyz" {
        responses.insert(
            "503".to_owned(),
            json!({
                "description": "A backend is not SERVING (or does not answer within 1 s); see Retry-After.",
                "content": json_content(schema_ref("NotReady")),
            }),
        );
    }
    let mut value = json!({
        "summary": op.summary,
        "operationId": format!("{}_{}", op.method, op.path.trim_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
        "tags": [op.tag],
        "responses": responses,
    });
    let mut params = op.params.clone();
    params.push(json!({
        "name": "x-request-id", "in": "header", "required": false,
        "description": "Correlation id, echoed back (generated when absent or not plain).",
        "schema": {"type": "string"}
    }));
    value["parameters"] = Value::Array(params);
    if let Some(body) = &op.body {
        value["requestBody"] = json!({"required": true, "content": json_content(body.clone())});
    }
    if let Some(scheme) = op.security {
        value["security"] = json!([{ scheme: [] }]);
    }
    value
}

fn ops() -> Vec<Op> {
    let code = || path_param("code", "Promo code, any case (`launch30` = `LAUNCH30`).");
    vec![
        Op {
            method: "get",
            path: "/api/promo/health",
            summary: "Promo service health figures for the landing page (no customer data).",
            tag: "promo",
            params: vec![],
            body: None,
            ok: (200, "Summary.", json_content(schema_ref("PromoHealth"))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/api/promo/packages",
            summary: "The packages on sale, with prices and quotas.",
            tag: "promo",
            params: vec![],
            body: None,
            ok: (200, "Packages.", json_content(schema_ref("Packages"))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/api/promo/{code}/remaining",
            summary: "Places left on a promo code.",
            tag: "promo",
            params: vec![code()],
            body: None,
            ok: (200, "Places left.", json_content(schema_ref("Remaining"))),
            errors: &[400, 404],
            security: None,
        },
        Op {
            method: "get",
            path: "/api/promo/{code}/remaining/stream",
            summary: "Places left as server-sent events: `remaining` events (JSON like /remaining) now and on every change, keep-alive comments in between.",
            tag: "promo",
            params: vec![code()],
            body: None,
            ok: (
                200,
                "Event stream.",
                json!({"text/event-stream": {"schema": sse_event_schema("Remaining")}}),
            ),
            errors: &[400, 404],
            security: None,
        },
        Op {
            method: "post",
            path: "/api/promo/validate",
            summary: "Checks a promo code (optionally for a package). A refused code is a 200 with valid=false and a reason.",
            tag: "promo",
            params: vec![],
            body: Some(schema_ref("ValidateRequest")),
            ok: (
                200,
                "Validation result.",
                json_content(schema_ref("ValidateResponse")),
            ),
            errors: &[400, 413, 415, 429],
            security: None,
        },
        Op {
            method: "post",
            path: "/api/promo/signup",
            summary: "Creates the account and its API key (shown once), redeeming the promo code if given.",
            tag: "promo",
            params: vec![json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "8 to 255 visible ASCII characters; a retry with the same key and body returns the first answer.",
                "schema": {"type": "string"}
            })],
            body: Some(schema_ref("SignupRequest")),
            ok: (
                201,
                "Account created.",
                json_content(schema_ref("SignupResponse")),
            ),
            errors: &[400, 404, 409, 413, 415, 429],
            security: None,
        },
        Op {
            method: "get",
            path: "/api/promo/stats",
            summary: "Signups, revenue, breakdown, customer e-mails and code usage (admin).",
            tag: "admin",
            params: vec![],
            body: None,
            ok: (200, "Statistics.", json_content(schema_ref("Stats"))),
            errors: &[400, 401],
            security: Some("adminToken"),
        },
        Op {
            method: "get",
            path: "/api/promo/codes",
            summary: "Every promo code with its usage (admin).",
            tag: "admin",
            params: vec![],
            body: None,
            ok: (200, "Codes.", json_content(schema_ref("Codes"))),
            errors: &[400, 401],
            security: Some("adminToken"),
        },
        Op {
            method: "post",
            path: "/api/promo/codes",
            summary: "Creates a promo code (admin).",
            tag: "admin",
            params: vec![],
            body: Some(schema_ref("CreateCodeRequest")),
            ok: (201, "Created.", json_content(schema_ref("PromoCode"))),
            errors: &[400, 401, 409, 413, 415],
            security: Some("adminToken"),
        },
        Op {
            method: "patch",
            path: "/api/promo/codes/{code}",
            summary: "Changes a promo code: activate/deactivate, limit, dates, discounts (admin).",
            tag: "admin",
            params: vec![code()],
            body: Some(schema_ref("UpdateCodeRequest")),
            ok: (200, "Updated.", json_content(schema_ref("PromoCode"))),
            errors: &[400, 401, 404, 409, 413, 415],
            security: Some("adminToken"),
        },
        Op {
            method: "get",
            path: "/api/promo/signups",
            summary: "Signups, newest first, paginated (admin). Never shows API keys.",
            tag: "admin",
            params: vec![
                json!({"name": "page_size", "in": "query", "required": false,
                       "description": "1 to 500; 0 or absent: 50.",
                       "schema": {"type": "integer", "minimum": 0, "maximum": 500}}),
                json!({"name": "page_token", "in": "query", "required": false,
                       "description": "next_page_token of the previous page.",
                       "schema": {"type": "string"}}),
            ],
            body: None,
            ok: (
                200,
                "A page of signups.",
                json_content(schema_ref("Signups")),
            ),
            errors: &[400, 401],
            security: Some("adminToken"),
        },
        Op {
            method: "post",
            path: "/api/promo/signups/{user_id}/revoke-key",
            summary: "Revokes a customer's API key (admin).",
            tag: "admin",
            params: vec![path_param("user_id", "Customer id (`usr_…`).")],
            body: None,
            ok: (
                200,
                "revoked is false when the key was already revoked.",
                json_content(json!({
                    "type": "object", "required": ["revoked"],
                    "properties": {"revoked": {"type": "boolean"}}
                })),
            ),
            errors: &[400, 401, 404],
            security: Some("adminToken"),
        },
        Op {
            method: "get",
            path: "/api/promo/outbox",
            summary: "Signup e-mails of the transactional outbox and their delivery state, newest first (admin).",
            tag: "admin",
            params: vec![
                json!({"name": "status", "in": "query", "required": false,
                       "description": "pending, sent or dead; absent: all.",
                       "schema": {"type": "string", "enum": ["pending", "sent", "dead"]}}),
                json!({"name": "limit", "in": "query", "required": false,
                       "description": "1 to 500; 0 or absent: 50.",
                       "schema": {"type": "integer", "minimum": 0, "maximum": 500}}),
            ],
            body: None,
            ok: (
                200,
                "E-mails.",
                json_content(json!({
                    "type": "object", "required": ["messages"],
                    "properties": {"messages": {"type": "array", "items": schema_ref("OutboxMessage")}}
                })),
            ),
            errors: &[400, 401],
            security: Some("adminToken"),
        },
        Op {
            method: "post",
            path: "/api/promo/outbox/{id}/retry",
            summary: "Re-queues a dead e-mail for immediate delivery with a fresh attempt budget (admin).",
            tag: "admin",
            params: vec![path_param("id", "E-mail id (`msg_…`).")],
            body: None,
            ok: (200, "Re-queued.", json_content(schema_ref("OutboxMessage"))),
            errors: &[400, 401, 404, 409],
            security: Some("adminToken"),
        },
        Op {
            method: "post",
            path: "/v1/chat/completions",
            summary: "OpenAI-compatible chat completion. With \"stream\": true, server-sent `chat.completion.chunk` events ending with `data: [DONE]`.",
            tag: "llm",
            params: vec![],
            body: Some(schema_ref("ChatCompletionRequest")),
            ok: (
                200,
                "The completion (or its event stream).",
                json!({
                    "application/json": {"schema": schema_ref("ChatCompletion")},
                    "text/event-stream": {"schema": sse_event_schema("ChatCompletionChunk")}
                }),
            ),
            errors: &[400, 401, 403, 404, 413, 415, 429, 502],
            security: Some("apiKey"),
        },
        Op {
            method: "get",
            path: "/v1/models",
            summary: "Public model names (OpenAI list format) with the provider routes behind each.",
            tag: "llm",
            params: vec![],
            body: None,
            ok: (200, "Models.", json_content(schema_ref("ModelList"))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/v1/usage",
            summary: "The calling key's usage this month against its package quota.",
            tag: "llm",
            params: vec![],
            body: None,
            ok: (200, "Usage.", json_content(schema_ref("Usage"))),
            errors: &[400, 401],
            security: Some("apiKey"),
        },
        Op {
            method: "get",
            path: "/api/gateway/providers",
            summary: "Provider status: configured, circuit state, recent latency, errors (admin).",
            tag: "admin",
            params: vec![],
            body: None,
            ok: (200, "Providers.", json_content(schema_ref("Providers"))),
            errors: &[400, 401, 403],
            security: Some("adminToken"),
        },
        Op {
            method: "get",
            path: "/api/platform/status",
            summary: "Public figures for the landing page: real providers configured and their median recent latency.",
            tag: "llm",
            params: vec![],
            body: None,
            ok: (200, "Figures.", json_content(schema_ref("PlatformStatus"))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/livez",
            summary: "Liveness: 200 while gateway-rest serves HTTP; asks nothing of the backends.",
            tag: "ops",
            params: vec![],
            body: None,
            ok: (200, "Alive.", json_content(schema_ref("Livez"))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/readyz",
            summary: "Readiness: 200 when promo-service and llm-gateway both answer grpc.health.v1 SERVING, else 503 (`unavailable`, Retry-After) naming the backends that are not; the verdict is cached 1 s.",
            tag: "ops",
            params: vec![],
            body: None,
            ok: (200, "Ready.", json_content(schema_ref("Readyz"))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/healthz",
            summary: "gateway-rest is up (always 200); status `ok` when every backend is SERVING, else `degraded`.",
            tag: "ops",
            params: vec![],
            body: None,
            ok: (200, "Health.", json_content(schema_ref("Healthz"))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics (text exposition format).",
            tag: "ops",
            params: vec![],
            body: None,
            ok: (
                200,
                "Metrics.",
                json!({"text/plain": {"schema": {"type": "string"}}}),
            ),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/openapi.json",
            summary: "This document.",
            tag: "ops",
            params: vec![],
            body: None,
            ok: (200, "OpenAPI 3.1.", json_content(json!({"type": "object"}))),
            errors: &[],
            security: None,
        },
        Op {
            method: "get",
            path: "/api-packages/",
            summary: "The landing page.",
            tag: "site",
            params: vec![],
            body: None,
            ok: (
                200,
                "HTML page.",
                json!({"text/html": {"schema": {"type": "string"}}}),
            ),
            errors: &[404],
            security: None,
        },
        Op {
            method: "get",
            path: "/api-packages/{path}",
            summary: "A static file of the landing page.",
            tag: "site",
            params: vec![path_param(
                "path",
                "File path under the landing page folder.",
            )],
            body: None,
            ok: (
                200,
                "The file.",
                json!({"*/*": {"schema": {"type": "string"}}}),
            ),
            errors: &[400, 404],
            security: None,
        },
    ]
}

/// One server-sent event: `data` holds the JSON of `payload` (or `[DONE]`), `event` its name.
fn sse_event_schema(payload: &str) -> Value {
    json!({
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "data": {"type": "string", "description": format!("JSON of a {payload}, or [DONE] at the end of a chat stream.")},
            "id": {"type": "string"},
            "retry": {"type": "integer"}
        }
    })
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

fn schemas() -> Value {
    let code_schema = json!({
        "type": "object",
        "required": ["code", "description", "active", "max_redemptions", "used", "remaining",
                     "duration_months", "valid_from", "valid_until", "discounts", "created_at"],
        "properties": {
            "code": {"type": "string"},
            "description": {"type": "string"},
            "active": {"type": "boolean"},
            "max_redemptions": nullable("integer"),
            "used": {"type": "integer"},
            "remaining": nullable("integer"),
            "duration_months": {"type": "integer"},
            "valid_from": {"type": "string"},
            "valid_until": nullable("string"),
            "discounts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "created_at": {"type": "string"}
        }
    });
    let error_inner = json!({
        "type": "object", "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "Stable machine code (`promo_exhausted`, `invalid_email`, ...)."},
            "message": {"type": "string", "description": "Human message (French on /api routes)."}
        }
    });
    let backends = json!({
        "type": "object",
        "description": "Each backend's grpc.health.v1 state, by name (`promo-service`, `llm-gateway`).",
        "additionalProperties": {
            "type": "object", "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["serving", "not_serving", "unreachable"]},
                "detail": {"type": "string"}
            }
        }
    });
    let mut openai_inner = error_inner.clone();
    openai_inner["required"] = json!(["code", "message", "type"]);
    openai_inner["properties"]["type"] = json!({"type": "string"});
    openai_inner["properties"]["param"] = json!({"type": "null"});
    let usage = json!({
        "type": "object", "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"}
        }
    });
    json!({
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": error_inner.clone()}
        },
        "OpenAiError": {
            "type": "object", "required": ["error"],
            "properties": {"error": openai_inner}
        },
        "PromoHealth": {
            "type": "object", "required": ["status", "promo_codes_active", "total_clients"],
            "properties": {
                "status": {"type": "string", "examples": ["healthy"]},
                "promo_codes_active": {"type": "integer"},
                "total_clients": {"type": "integer"}
            }
        },
        "Packages": {
            "type": "object", "required": ["packages"],
            "properties": {"packages": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "name", "monthly_price_dzd", "tokens_per_month", "requests_per_minute", "allowed_models"],
                "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"},
                    "monthly_price_dzd": {"type": "integer"},
                    "tokens_per_month": {"type": "integer"},
                    "requests_per_minute": {"type": "integer"},
                    "allowed_models": {"type": "array", "items": {"type": "string"}}
                }
            }}}
        },
        "Remaining": {
            "type": "object", "required": ["code", "remaining", "total", "percent_filled", "unlimited"],
            "properties": {
                "code": {"type": "string"},
                "remaining": {"type": "integer"},
                "total": {"type": "integer"},
                "percent_filled": {"type": "number"},
                "unlimited": {"type": "boolean"}
            }
        },
        "ValidateRequest": {
            "type": "object", "required": ["code"], "additionalProperties": false,
            "properties": {
                "code": {"type": "string", "minLength": 1, "maxLength": 64, "examples": ["LAUNCH30"]},
                "package": {"type": ["string", "null"], "maxLength": 64, "examples": ["dev"]}
            }
        },
        "ValidateResponse": {
            "type": "object", "required": ["valid", "message"],
            "properties": {
                "valid": {"type": "boolean"},
                "reason": {"type": "string", "enum": ["unknown", "inactive", "not_yet_valid", "expired", "exhausted", "not_for_package", "unspecified"]},
                "discount_percent": {"type": "integer"},
                "duration_months": {"type": "integer"},
                "message": {"type": "string"},
                "code": {"type": "string"},
                "remaining": {"type": "integer"}
            }
        },
        "SignupRequest": {
            "type": "object", "required": ["email", "package"], "additionalProperties": false,
            "properties": {
                "email": {"type": "string", "format": "email", "maxLength": 254, "examples": ["a@b.dz"]},
                "package": {"type": "string", "enum": ["starter", "dev", "business", "premium"],
                            "description": "A package id; the operator may add others."},
                "promo_code": {"type": ["string", "null"], "maxLength": 64, "examples": ["LAUNCH30"]}
            }
        },
        "SignupResponse": {
            "type": "object",
            "required": ["success", "user_id", "email", "package", "base_price_dzd", "price_dzd",
                         "discount_percent", "discount_ends_at", "promo_code", "api_key", "created_at"],
            "properties": {
                "success": {"type": "boolean"},
                "user_id": {"type": "string"},
                "email": {"type": "string"},
                "package": {"type": "string"},
                "base_price_dzd": {"type": "integer"},
                "price_dzd": {"type": "integer"},
                "discount_percent": {"type": "integer"},
                "discount_ends_at": nullable("string"),
                "promo_code": nullable("string"),
                "api_key": {"type": "string", "description": "Shown only here."},
                "created_at": {"type": "string"}
            }
        },
        "PromoCode": code_schema,
        "Codes": {
            "type": "object", "required": ["codes"],
            "properties": {"codes": {"type": "array", "items": schema_ref("PromoCode")}}
        },
        "Stats": {
            "type": "object",
            "required": ["total_signups", "launch30_used", "launch30_remaining", "revenue_monthly_dzd", "breakdown", "clients", "codes"],
            "properties": {
                "total_signups": {"type": "integer"},
                "launch30_used": {"type": "integer"},
                "launch30_remaining": {"type": "integer"},
                "revenue_monthly_dzd": {"type": "integer"},
                "breakdown": {"type": "object", "additionalProperties": {"type": "integer"}},
                "clients": {"type": "array", "items": {"type": "string"}},
                "codes": {"type": "array", "items": schema_ref("PromoCode")}
            }
        },
        "CreateCodeRequest": {
            "type": "object", "required": ["code", "duration_months", "discounts"], "additionalProperties": false,
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Za-z0-9_-]{3,32}$"},
                "description": {"type": ["string", "null"], "maxLength": 500},
                "max_redemptions": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000000},
                "duration_months": {"type": "integer", "minimum": 1, "maximum": 120},
                "valid_from": {"type": ["string", "null"], "description": "RFC 3339; empty or absent: now."},
                "valid_until": {"type": ["string", "null"], "description": "RFC 3339; empty or absent: never."},
                "discounts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}}
            }
        },
        "UpdateCodeRequest": {
            "type": "object", "additionalProperties": false,
            "properties": {
                "active": {"type": ["boolean", "null"]},
                "max_redemptions": {"type": ["integer", "null"], "minimum": 0, "maximum": 4294967295_u64},
                "unlimited": {"type": ["boolean", "null"]},
                "description": {"type": ["string", "null"]},
                "valid_from": {"type": ["string", "null"]},
                "valid_until": {"type": ["string", "null"], "description": "Empty string removes the end date."},
                "discounts": {"type": ["object", "null"], "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 4294967295_u64}},
                "duration_months": {"type": ["integer", "null"], "minimum": 0, "maximum": 4294967295_u64}
            }
        },
        "Signups": {
            "type": "object", "required": ["signups", "next_page_token", "total"],
            "properties": {
                "signups": {"type": "array", "items": {
                    "type": "object",
                    "required": ["user_id", "email", "package", "base_price_dzd", "price_dzd", "discount_percent",
                                 "promo_code", "discount_ends_at", "created_at", "api_key_prefix", "api_key_revoked"],
                    "properties": {
                        "user_id": {"type": "string"}, "email": {"type": "string"},
                        "package": {"type": "string"},
                        "base_price_dzd": {"type": "integer"}, "price_dzd": {"type": "integer"},
                        "discount_percent": {"type": "integer"},
                        "promo_code": nullable("string"), "discount_ends_at": nullable("string"),
                        "created_at": {"type": "string"}, "api_key_prefix": {"type": "string"},
                        "api_key_revoked": {"type": "boolean"}
                    }
                }},
                "next_page_token": nullable("string"),
                "total": {"type": "integer"}
            }
        },
        "OutboxMessage": {
            "type": "object",
            "required": ["id", "kind", "recipient", "status", "attempts", "last_error", "created_at",
                         "next_attempt_at", "sent_at", "user_id"],
            "properties": {
                "id": {"type": "string"},
                "kind": {"type": "string", "enum": ["customer_confirmation", "operator_notification"]},
                "recipient": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "sent", "dead", "unknown"]},
                "attempts": {"type": "integer"},
                "last_error": nullable("string"),
                "created_at": {"type": "string"},
                "next_attempt_at": nullable("string"),
                "sent_at": nullable("string"),
                "user_id": {"type": "string"}
            }
        },
        "ChatCompletionRequest": {
            "type": "object", "required": ["model", "messages"],
            "description": "OpenAI's Chat Completions request; other OpenAI fields are accepted and ignored.",
            "properties": {
                "model": {"type": "string", "minLength": 1, "maxLength": 200},
                "messages": {"type": "array", "minItems": 1, "maxItems": 256, "items": {
                    "type": "object", "required": ["role"],
                    "properties": {
                        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant"]},
                        "content": {"oneOf": [
                            {"type": "string"},
                            {"type": "null"},
                            {"type": "array", "items": {"type": "object", "required": ["type", "text"],
                                "properties": {"type": {"type": "string", "const": "text"}, "text": {"type": "string"}}}}
                        ]}
                    }
                }},
                "temperature": {"type": ["number", "null"], "minimum": 0, "maximum": 2},
                "top_p": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                "max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000000},
                "max_completion_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000000},
                "stop": {"oneOf": [{"type": "string"}, {"type": "array", "maxItems": 4, "items": {"type": "string"}}, {"type": "null"}]},
                "stream": {"type": ["boolean", "null"]},
                "stream_options": {"type": ["object", "null"], "properties": {"include_usage": {"type": ["boolean", "null"]}}},
                "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 1},
                "routing": {"type": ["string", "null"], "enum": ["fallback", "lowest_latency", "lowest_cost", "default", "", null],
                            "description": "IAFactory extension: the routing policy for this call."}
            }
        },
        "ChatCompletion": {
            "type": "object", "required": ["id", "object", "created", "model", "choices", "usage"],
            "properties": {
                "id": {"type": "string"},
                "object": {"type": "string", "const": "chat.completion"},
                "created": {"type": "integer"},
                "model": {"type": "string"},
                "choices": {"type": "array", "items": {
                    "type": "object", "required": ["index", "message", "finish_reason"],
                    "properties": {
                        "index": {"type": "integer"},
                        "message": {"type": "object", "required": ["role", "content"],
                            "properties": {"role": {"type": "string"}, "content": {"type": "string"}}},
                        "finish_reason": {"type": "string"}
                    }
                }},
                "usage": usage,
                "iaf": {"type": "object", "description": "Provider, upstream model, cost, latency, attempts."}
            }
        },
        "ModelList": {
            "type": "object", "required": ["object", "data"],
            "properties": {
                "object": {"type": "string", "const": "list"},
                "data": {"type": "array", "items": {
                    "type": "object", "required": ["id", "object", "created", "owned_by", "available", "routes"],
                    "properties": {
                        "id": {"type": "string"}, "object": {"type": "string", "const": "model"},
                        "created": {"type": "integer"}, "owned_by": {"type": "string"},
                        "available": {"type": "boolean"}, "default_policy": {"type": "string"},
                        "routes": {"type": "array", "items": {"type": "object"}}
                    }
                }}
            }
        },
        "Usage": {
            "type": "object",
            "required": ["key_id", "user_id", "package", "period", "requests", "total_tokens", "tokens_per_month", "tokens_remaining", "resets_at"],
            "properties": {
                "key_id": {"type": "string"}, "user_id": {"type": "string"}, "package": {"type": "string"},
                "period": {"type": "string"}, "requests": {"type": "integer"},
                "prompt_tokens": {"type": "integer"}, "completion_tokens": {"type": "integer"},
                "total_tokens": {"type": "integer"}, "cost_usd": {"type": "number"},
                "tokens_per_month": {"type": "integer"}, "tokens_remaining": {"type": "integer"},
                "requests_per_minute": {"type": "integer"}, "resets_at": {"type": "string"},
                "models": {"type": "array", "items": {"type": "object"}}
            }
        },
        "Providers": {
            "type": "object", "required": ["mock_active", "providers"],
            "properties": {
                "mock_active": {"type": "boolean"},
                "providers": {"type": "array", "items": {
                    "type": "object", "required": ["name", "kind", "configured", "circuit_state"],
                    "properties": {
                        "name": {"type": "string"}, "kind": {"type": "string"}, "base_url": {"type": "string"},
                        "configured": {"type": "boolean"},
                        "circuit_state": {"type": "string", "enum": ["closed", "open", "half_open", "unspecified"]},
                        "ewma_latency_ms": {"type": "number"}, "requests": {"type": "integer"},
                        "failures": {"type": "integer"}, "consecutive_failures": {"type": "integer"},
                        "last_error": nullable("string"), "last_error_at_ms": nullable("integer")
                    }
                }}
            }
        },
        "PlatformStatus": {
            "type": "object", "required": ["providers_configured", "median_latency_ms", "mock_active"],
            "properties": {
                "providers_configured": {"type": "integer", "minimum": 0},
                "median_latency_ms": {"type": ["number", "null"], "description": "Null before any successful call."},
                "mock_active": {"type": "boolean"}
            }
        },
        "Healthz": {
            "type": "object", "required": ["status", "backends"],
            "properties": {
                "status": {"type": "string", "enum": ["ok", "degraded"]},
                "backends": backends.clone()
            }
        },
        "Livez": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}}
        },
        "Readyz": {
            "type": "object", "required": ["status", "backends"],
            "properties": {
                "status": {"type": "string", "enum": ["ready"]},
                "backends": backends.clone()
            }
        },
        "NotReady": {
            "type": "object", "required": ["error", "status", "backends"],
            "description": "The error body (`unavailable`) with each backend's state.",
            "properties": {
                "error": error_inner,
                "status": {"type": "string", "enum": ["not_ready"]},
                "backends": backends
            }
        }
    })
}

/// The document, serialized.
pub fn document() -> bytes::Bytes {
    let mut paths = Map::new();
    for op in ops() {
        let item = paths
            .entry(op.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(item) = item {
            item.insert(op.method.to_owned(), operation(&op));
        }
    }
    let doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "IAFactory API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Landing page JSON (/api/promo), the OpenAI-compatible API (/v1) and operations. \
                Errors: {\"error\":{\"code\",\"message\"}} with a stable code; /v1 errors add OpenAI's `type`."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "The operator's ADMIN_TOKEN."},
                "apiKey": {"type": "http", "scheme": "bearer", "description": "The customer's API key (iaf_…)."}
            }
        }
    });
    bytes::Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_is_json_with_every_served_path() {
        let doc: serde_json::Value = serde_json::from_slice(&super::document()).unwrap_or_default();
        for (method, path) in crate::served_routes() {
            let m = method.as_str().to_ascii_lowercase();
            assert!(doc["paths"][path][&m].is_object(), "{method} {path}");
        }
    }
}
