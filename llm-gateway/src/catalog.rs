//! The model catalogue: which providers exist (wire format, base URL, where their key comes from)
//! and which public model names route to which provider models at which price.
//!
//! Built-in defaults live in `default_catalog.toml` (embedded); an operator file in the same
//! format adds providers, overrides provider fields and replaces models by name. Everything is
//! validated at start with errors naming the offending entry, so a typo never shows up later as a
//! failing customer call.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The name of the offline mock provider, reserved: the catalogue refuses it for a configured
/// provider. (Defined here rather than next to the mock so the catalogue does not depend on the
/// providers, which depend on it.)
pub const MOCK_PROVIDER: &str = "mock";

/// The built-in catalogue.
pub const DEFAULT_CATALOG: &str = include_str!("default_catalog.toml");

/// Wire format spoken by a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI chat completions (OpenAI, Groq, DeepSeek, Mistral, Together, OpenRouter, vLLM,
    /// Ollama, ...).
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini generateContent.
    Gemini,
    /// Cohere chat v2.
    Cohere,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Cohere => "cohere",
        }
    }
}

/// How to order a model's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Catalogue order.
    #[default]
    Fallback,
    /// Lowest moving-average latency first.
    LowestLatency,
    /// Lowest price first.
    LowestCost,
}

/// A provider API key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// One provider as configured.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub name: String,
    pub kind: ProviderKind,
    /// Base URL without trailing slash (`https://api.openai.com/v1`).
    pub base_url: String,
    /// Environment variable holding the key (informational once resolved).
    pub api_key_env: Option<String>,
    pub api_key: Option<ApiKey>,
    /// A self-hosted endpoint (vLLM, Ollama) may need no key: it is configured without one.
    pub requires_key: bool,
    /// OpenAI family: send `stream_options.include_usage` so the last chunk carries usage.
    pub stream_usage_option: bool,
}

impl ProviderSettings {
    /// True when calls may be sent (a key is set, or none is needed).
    pub fn configured(&self) -> bool {
        !self.requires_key || self.api_key.is_some()
    }
}

/// What a public model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Chat completions.
    #[default]
    Chat,
    /// Embeddings (the Embed RPC).
    Embedding,
}

/// What a route can carry, as the catalogue states it (from the provider's documentation).
/// Unstated means no: a request needing a capability only goes to routes that state it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// Function calling (`tools`, `tool_choice`, tool messages).
    pub tools: bool,
    /// Image content parts.
    pub vision: bool,
    /// `response_format: json_object`.
    pub json_object: bool,
    /// `response_format: json_schema`.
    pub json_schema: bool,
    /// `logprobs` / `top_logprobs`.
    pub logprobs: bool,
    /// `n` above 1.
    pub multiple_choices: bool,
    /// `reasoning_effort`.
    pub reasoning: bool,
    /// Embedding models: `dimensions` (shortened vectors).
    pub dimensions: bool,
    /// Context window in tokens; 0 when unknown.
    pub context_length: u32,
    /// Largest answer in tokens; 0 when unknown. Anthropic routes send it as `max_tokens` when
    /// the client sets none (Anthropic requires one).
    pub max_output_tokens: u32,
}

/// Capabilities as written in the catalogue: on a model (its default for every route) and on a
/// route (overriding the model's, field by field).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CapabilitySpec {
    pub tools: Option<bool>,
    pub vision: Option<bool>,
    pub json_object: Option<bool>,
    pub json_schema: Option<bool>,
    pub logprobs: Option<bool>,
    pub multiple_choices: Option<bool>,
    pub reasoning: Option<bool>,
    pub dimensions: Option<bool>,
    pub context_length: Option<u32>,
    pub max_output_tokens: Option<u32>,
}

impl CapabilitySpec {
    /// `self` with `over`'s stated fields on top.
    pub fn overlay(self, over: &CapabilitySpec) -> CapabilitySpec {
        CapabilitySpec {
            tools: over.tools.or(self.tools),
            vision: over.vision.or(self.vision),
            json_object: over.json_object.or(self.json_object),
            json_schema: over.json_schema.or(self.json_schema),
            logprobs: over.logprobs.or(self.logprobs),
            multiple_choices: over.multiple_choices.or(self.multiple_choices),
            reasoning: over.reasoning.or(self.reasoning),
            dimensions: over.dimensions.or(self.dimensions),
            context_length: over.context_length.or(self.context_length),
            max_output_tokens: over.max_output_tokens.or(self.max_output_tokens),
        }
    }

    pub fn resolve(self) -> Capabilities {
        Capabilities {
            tools: self.tools.unwrap_or(false),
            vision: self.vision.unwrap_or(false),
            json_object: self.json_object.unwrap_or(false),
            json_schema: self.json_schema.unwrap_or(false),
            logprobs: self.logprobs.unwrap_or(false),
            multiple_choices: self.multiple_choices.unwrap_or(false),
            reasoning: self.reasoning.unwrap_or(false),
            dimensions: self.dimensions.unwrap_or(false),
            context_length: self.context_length.unwrap_or(0),
            max_output_tokens: self.max_output_tokens.unwrap_or(0),
        }
    }
}

/// One way to serve a public model.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    pub input_usd_per_mtok: f64,
    /// Required even for embedding routes (0 there): a forgotten price must not bill as free.
    pub output_usd_per_mtok: f64,
    /// Overrides of the model's capabilities for this route.
    #[serde(default)]
    pub capabilities: CapabilitySpec,
}

/// A public model.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    #[serde(default)]
    pub policy: Policy,
    /// Chat (default) or embedding.
    #[serde(default)]
    pub kind: ModelKind,
    /// Unix time (seconds) the model was added to the catalogue (OpenAI's `created`).
    #[serde(default)]
    pub created: i64,
    /// Who makes the model (`meta`, `openai`, ...): OpenAI's `owned_by`.
    #[serde(default)]
    pub owned_by: String,
    /// Capabilities of every route unless a route says otherwise.
    #[serde(default)]
    pub capabilities: CapabilitySpec,
    pub routes: Vec<RouteSpec>,
}

impl ModelSpec {
    /// A route's capabilities: the model's, with the route's overrides.
    pub fn route_capabilities(&self, route: &RouteSpec) -> Capabilities {
        self.capabilities.overlay(&route.capabilities).resolve()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderFile {
    kind: Option<ProviderKind>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    requires_key: Option<bool>,
    stream_usage_option: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    replace_models: bool,
    #[serde(default)]
    providers: BTreeMap<String, ProviderFile>,
    #[serde(default)]
    models: Vec<ModelSpec>,
}

/// A catalogue that failed validation.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalogue {source_name}: {error}")]
    Parse {
        source_name: String,
        error: Box<toml::de::Error>,
    },
    #[error("catalogue: {0}")]
    Invalid(String),
}

/// Providers and models, merged and validated (keys not yet resolved).
#[derive(Debug, Clone)]
pub struct Catalog {
    pub providers: Vec<ProviderSettings>,
    pub models: Vec<ModelSpec>,
}

impl Catalog {
    /// The built-in catalogue.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::from_layers(&[("built-in", DEFAULT_CATALOG)])
    }

    /// The built-in catalogue with an operator file (TOML text) applied on top.
    pub fn with_overrides(source_name: &str, toml_text: &str) -> Result<Catalog, CatalogError> {
        Catalog::from_layers(&[("built-in", DEFAULT_CATALOG), (source_name, toml_text)])
    }

    /// Only what `toml_text` declares (tests, fully custom deployments).
    pub fn from_toml(source_name: &str, toml_text: &str) -> Result<Catalog, CatalogError> {
        Catalog::from_layers(&[(source_name, toml_text)])
    }

    fn from_layers(layers: &[(&str, &str)]) -> Result<Catalog, CatalogError> {
        let mut providers: BTreeMap<String, ProviderFile> = BTreeMap::new();
        let mut models: Vec<ModelSpec> = Vec::new();
        for (source_name, text) in layers {
            let file: CatalogFile = toml::from_str(text).map_err(|e| CatalogError::Parse {
                source_name: (*source_name).to_owned(),
                error: Box::new(e),
            })?;
            for (name, p) in file.providers {
                let entry = providers.entry(name).or_default();
                entry.kind = p.kind.or(entry.kind);
                entry.base_url = p.base_url.or(entry.base_url.take());
                entry.api_key_env = p.api_key_env.or(entry.api_key_env.take());
                entry.requires_key = p.requires_key.or(entry.requires_key);
                entry.stream_usage_option = p.stream_usage_option.or(entry.stream_usage_option);
            }
            if file.replace_models {
                models.clear();
            }
            for m in file.models {
                match models.iter_mut().find(|x| x.name == m.name) {
                    Some(slot) => *slot = m,
                    None => models.push(m),
                }
            }
        }
        let mut resolved = Vec::new();
        for (name, p) in providers {
            if !valid_name(&name) {
                return Err(CatalogError::Invalid(format!(
                    "provider name {name:?} must be 1-64 characters among a-z, 0-9, '-', '_'"
                )));
            }
            if name == MOCK_PROVIDER {
                return Err(CatalogError::Invalid(
                    "provider name \"mock\" is reserved for the offline mock".into(),
                ));
            }
            let kind = p.kind.ok_or_else(|| {
                CatalogError::Invalid(format!(
                    "provider {name:?} has no kind (openai, anthropic, gemini, cohere)"
                ))
            })?;
            let base_url = p.base_url.ok_or_else(|| {
                CatalogError::Invalid(format!("provider {name:?} has no base_url"))
            })?;
            check_url(&name, &base_url)?;
            resolved.push(ProviderSettings {
                name,
                kind,
                base_url: base_url.trim_end_matches('/').to_owned(),
                api_key_env: p.api_key_env,
                api_key: None,
                requires_key: p.requires_key.unwrap_or(true),
                stream_usage_option: p.stream_usage_option.unwrap_or(true),
            });
        }
        let catalog = Catalog {
            providers: resolved,
            models,
        };
        catalog.validate()?;
        Ok(catalog)
    }

    fn validate(&self) -> Result<(), CatalogError> {
        let mut seen = std::collections::HashSet::new();
        for m in &self.models {
            if !valid_model_name(&m.name) {
                return Err(CatalogError::Invalid(format!(
                    "model name {:?} must be 1-128 printable characters without spaces",
                    m.name
                )));
            }
            if !seen.insert(m.name.as_str()) {
                return Err(CatalogError::Invalid(format!(
                    "model {:?} declared twice",
                    m.name
                )));
            }
            if m.routes.is_empty() {
                return Err(CatalogError::Invalid(format!(
                    "model {:?} has no route",
                    m.name
                )));
            }
            for r in &m.routes {
                if !self.providers.iter().any(|p| p.name == r.provider) {
                    return Err(CatalogError::Invalid(format!(
                        "model {:?} routes to unknown provider {:?}",
                        m.name, r.provider
                    )));
                }
                if r.model.trim().is_empty() {
                    return Err(CatalogError::Invalid(format!(
                        "model {:?}: route to {:?} has an empty upstream model",
                        m.name, r.provider
                    )));
                }
                let anthropic = self
                    .providers
                    .iter()
                    .any(|p| p.name == r.provider && p.kind == ProviderKind::Anthropic);
                if m.kind == ModelKind::Embedding && anthropic {
                    return Err(CatalogError::Invalid(format!(
                        "model {:?} is an embedding model but routes to {:?}, an anthropic provider: Anthropic has no embeddings API",
                        m.name, r.provider
                    )));
                }
                let ok = |p: f64| p.is_finite() && p >= 0.0;
                if !ok(r.input_usd_per_mtok) || !ok(r.output_usd_per_mtok) {
                    return Err(CatalogError::Invalid(format!(
                        "model {:?}: route to {:?} has a negative or non-finite price",
                        m.name, r.provider
                    )));
                }
            }
        }
        Ok(())
    }

    /// Fills in keys and base-URL overrides from an environment lookup: each provider's key from
    /// its `api_key_env`, and its base URL from `<NAME>_BASE_URL` (e.g. `GROQ_BASE_URL`).
    pub fn resolve_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), CatalogError> {
        for p in &mut self.providers {
            if let Some(var) = &p.api_key_env {
                p.api_key = lookup(var)
                    .map(|k| k.trim().to_owned())
                    .filter(|k| !k.is_empty())
                    .map(ApiKey);
            }
            let var = format!("{}_BASE_URL", p.name.to_ascii_uppercase().replace('-', "_"));
            if let Some(url) = lookup(&var).filter(|u| !u.trim().is_empty()) {
                check_url(&p.name, url.trim())
                    .map_err(|e| CatalogError::Invalid(format!("{var}: {e}")))?;
                p.base_url = url.trim().trim_end_matches('/').to_owned();
            }
        }
        Ok(())
    }

    /// Sets a provider's key directly (tests, embedding).
    pub fn set_key(&mut self, provider: &str, key: &str) -> bool {
        match self.providers.iter_mut().find(|p| p.name == provider) {
            Some(p) => {
                p.api_key = Some(ApiKey(key.to_owned()));
                true
            }
            None => false,
        }
    }

    /// True when no provider can be called: the offline mock then answers.
    pub fn nothing_configured(&self) -> bool {
        !self.providers.iter().any(ProviderSettings::configured)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn valid_model_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic())
}

fn check_url(name: &str, url: &str) -> Result<(), CatalogError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://"))
        && url.parse::<http::Uri>().is_ok();
    if ok {
        Ok(())
    } else {
        Err(CatalogError::Invalid(format!(
            "provider {name:?}: base_url {url:?} is not an http(s) URL"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalogue_is_valid_and_unconfigured() {
        let c = Catalog::builtin();
        assert!(c.is_ok(), "{c:?}");
        let Ok(mut c) = c else { return };
        assert!(c.models.len() >= 8);
        assert!(c.nothing_configured());
        assert!(
            c.resolve_env(|v| (v == "GROQ_API_KEY").then(|| "gsk".to_owned()))
                .is_ok()
        );
        assert!(!c.nothing_configured());
        let groq = c.providers.iter().find(|p| p.name == "groq");
        assert!(groq.is_some_and(|g| g.configured()));
        assert!(!format!("{c:?}").contains("gsk"), "keys never printed");
    }

    #[test]
    fn overrides_merge_providers_and_replace_models() {
        let text = r#"
[providers.groq]
base_url = "http://127.0.0.1:9/openai/v1/"

[providers.local]
kind = "openai"
base_url = "http://127.0.0.1:11434/v1"
requires_key = false

[[models]]
name = "llama-3.3-70b"
policy = "lowest-cost"
routes = [{ provider = "local", model = "llama3.3", input_usd_per_mtok = 0, output_usd_per_mtok = 0 }]
"#;
        let c = Catalog::with_overrides("test.toml", text);
        assert!(c.is_ok(), "{c:?}");
        let Ok(c) = c else { return };
        let groq = c.providers.iter().find(|p| p.name == "groq");
        assert_eq!(
            groq.map(|g| g.base_url.as_str()),
            Some("http://127.0.0.1:9/openai/v1")
        );
        assert_eq!(groq.map(|g| g.kind), Some(ProviderKind::Openai));
        let m = c.models.iter().find(|m| m.name == "llama-3.3-70b");
        assert_eq!(m.map(|m| m.policy), Some(Policy::LowestCost));
        assert!(
            !c.nothing_configured(),
            "a keyless local endpoint is configured"
        );
    }

    #[test]
    fn bad_catalogues_name_the_problem() {
        let cases = [
            (
                "[[models]]\nname = \"x\"\nroutes = [{ provider = \"nope\", model = \"m\", input_usd_per_mtok = 1, output_usd_per_mtok = 1 }]",
                "unknown provider",
            ),
            (
                "[providers.p]\nkind = \"openai\"\nbase_url = \"ftp://x\"",
                "not an http",
            ),
            (
                "[providers.p]\nkind = \"soap\"\nbase_url = \"http://x\"",
                "test.toml",
            ),
            (
                "[providers.mock]\nkind = \"openai\"\nbase_url = \"http://x\"",
                "reserved",
            ),
            (
                "[providers.a]\nkind = \"anthropic\"\nbase_url = \"http://x\"\n[[models]]\nname = \"e\"\nkind = \"embedding\"\nroutes = [{ provider = \"a\", model = \"m\", input_usd_per_mtok = 1, output_usd_per_mtok = 0 }]",
                "no embeddings API",
            ),
            (
                "[providers.p]\nkind = \"openai\"\nbase_url = \"http://x\"\n[[models]]\nname = \"x\"\nroutes = [{ provider = \"p\", model = \"m\", input_usd_per_mtok = -1, output_usd_per_mtok = 1 }]",
                "negative",
            ),
        ];
        for (text, needle) in cases {
            let err = Catalog::from_toml("test.toml", text)
                .err()
                .map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(needle)),
                "{text}: {err:?}"
            );
        }
    }
}
