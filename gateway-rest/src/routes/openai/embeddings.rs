//! `POST /v1/embeddings`: OpenAI's embeddings API over llm-gateway's `Embed`.

use axum::body::Body;
use axum::extract::State;
use base64::Engine;
use http::{HeaderMap, StatusCode};
use iafactory::proto::iafactory::llm::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};

use super::{ApiResult, oa, parse_body, require_bearer, set_iaf_headers};
use crate::backend::{self, Forward};
use crate::extract::read_json_bytes;
use crate::openapi::family;
use crate::respond::json;
use crate::state::AppState;

/// OpenAI's embeddings request. The contract has no passthrough for embeddings: any other field
/// is refused (400 naming it) rather than ignored.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct EmbeddingsRequest {
    /// Public embedding model name (see `/v1/models`, `kind: embedding`).
    #[schema(min_length = 1, max_length = 128)]
    model: String,
    /// A text, texts, or texts already split into token ids (one list, or one list per text).
    #[schema(schema_with = input_schema)]
    input: EmbeddingInput,
    /// `float` (the default) or `base64` (the little-endian float32 bytes of each vector).
    #[serde(default)]
    #[schema(inline)]
    encoding_format: Option<EncodingFormat>,
    /// Wanted vector size, for models that can shorten their vectors.
    #[serde(default)]
    #[schema(minimum = 1)]
    dimensions: Option<u32>,
    #[serde(default)]
    user: Option<String>,
    /// IAFactory extension: what the texts are for (`search_document`, `search_query`,
    /// `classification`, `clustering`), for providers that need it (Cohere).
    #[serde(default)]
    input_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<u32>),
    TokenLists(Vec<Vec<u32>>),
}

fn input_schema() -> Schema {
    let string = || ObjectBuilder::new().schema_type(Type::String);
    let token = || {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0))
    };
    OneOfBuilder::new()
        .item(string())
        .item(ArrayBuilder::new().items(string()).min_items(Some(1)))
        .item(ArrayBuilder::new().items(token()).min_items(Some(1)))
        .item(
            ArrayBuilder::new()
                .items(ArrayBuilder::new().items(token()).min_items(Some(1)))
                .min_items(Some(1)),
        )
        .build()
        .into()
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum EncodingFormat {
    Float,
    Base64,
}

#[derive(Serialize, ToSchema)]
struct EmbeddingList {
    #[schema(inline)]
    object: super::ListObject,
    data: Vec<Embedding>,
    model: String,
    usage: EmbeddingUsage,
    iaf: EmbeddingInfo,
}

#[derive(Serialize, ToSchema)]
struct Embedding {
    #[schema(inline)]
    object: EmbeddingObject,
    index: u32,
    /// The vector, or its little-endian float32 bytes in base64 (`encoding_format: base64`).
    #[schema(schema_with = vector_schema)]
    embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Float(Vec<f32>),
    Base64(String),
}

fn vector_schema() -> Schema {
    OneOfBuilder::new()
        .item(ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::Number)))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .build()
        .into()
}

#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum EmbeddingObject {
    Embedding,
}

#[derive(Serialize, ToSchema)]
struct EmbeddingUsage {
    prompt_tokens: u32,
    total_tokens: u32,
}

/// The platform's figures (also as `x-iaf-*` headers).
#[derive(Serialize, ToSchema)]
struct EmbeddingInfo {
    provider: String,
    upstream_model: String,
    /// Only when the operator shows upstream costs (`SHOW_UPSTREAM_COST`).
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    latency_ms: u64,
    attempts: u32,
}

/// OpenAI's base64 encoding: the vector's float32 values, little-endian, back to back.
fn base64_le(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// OpenAI-compatible embeddings.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    tag = "llm",
    security(("apiKey" = [])),
    request_body = EmbeddingsRequest,
    responses(
        (
            status = 200,
            description = "One vector per input, in input order.",
            body = EmbeddingList,
            headers(
                ("x-iaf-provider" = String, description = "Provider that served the answer."),
                ("x-iaf-latency-ms" = i64, description = "Gateway latency in milliseconds."),
                ("x-iaf-cost-usd" = String, description = "Cost of the call in US dollars."),
            ),
        ),
        family::ModelCall,
    ),
)]
pub(super) async fn embeddings(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    require_bearer(&headers)?;
    let bytes = read_json_bytes(&headers, body, state.config.body_limit)
        .await
        .map_err(oa)?;
    let input: EmbeddingsRequest = parse_body(&bytes)?;
    let (texts, token_input) = match input.input {
        EmbeddingInput::One(s) => (vec![s], Vec::new()),
        EmbeddingInput::Many(v) => (v, Vec::new()),
        EmbeddingInput::Tokens(ids) => (Vec::new(), vec![pb::TokenIds { ids }]),
        EmbeddingInput::TokenLists(lists) => (
            Vec::new(),
            lists.into_iter().map(|ids| pb::TokenIds { ids }).collect(),
        ),
    };
    let base64 = input.encoding_format == Some(EncodingFormat::Base64);
    let req = backend::request(
        pb::EmbedRequest {
            model: input.model,
            input: texts,
            dimensions: input.dimensions,
            user: input.user,
            input_type: input.input_type,
            token_input,
        },
        &headers,
        &[Forward::Authorization],
    )
    .map_err(oa)?;
    let r = state
        .llm_client()
        .embed(req)
        .await
        .map_err(oa)?
        .into_inner();
    let show_cost = state.config.show_upstream_cost;
    let usage = r.usage.unwrap_or_default();
    let mut response = json(
        StatusCode::OK,
        &EmbeddingList {
            object: super::ListObject::List,
            data: r
                .data
                .into_iter()
                .map(|e| Embedding {
                    object: EmbeddingObject::Embedding,
                    index: e.index,
                    embedding: if base64 {
                        Vector::Base64(base64_le(&e.vector))
                    } else {
                        Vector::Float(e.vector)
                    },
                })
                .collect(),
            model: r.model,
            usage: EmbeddingUsage {
                prompt_tokens: usage.prompt_tokens,
                total_tokens: usage.total_tokens,
            },
            iaf: EmbeddingInfo {
                provider: r.provider.clone(),
                upstream_model: r.upstream_model,
                cost_usd: show_cost.then_some(r.cost_usd),
                latency_ms: r.latency_ms,
                attempts: r.attempts,
            },
        },
    );
    set_iaf_headers(
        &mut response,
        &r.provider,
        Some(r.latency_ms),
        show_cost.then_some(r.cost_usd),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_is_little_endian_float32() {
        // 1.0f32 = 0x3f800000 → bytes 00 00 80 3f.
        assert_eq!(super::base64_le(&[1.0]), "AACAPw==");
    }
}
