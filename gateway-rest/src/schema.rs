//! Schemas the `ToSchema` derive cannot spell from a Rust type, used through
//! `#[schema(schema_with = …)]`.

use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// A field sent for OpenAI compatibility whose value is always `null`.
pub fn null() -> Object {
    ObjectBuilder::new().schema_type(Type::Null).build()
}
