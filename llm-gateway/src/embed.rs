//! The embeddings domain: a validated request ([`EmbedInput`]) and its answer ([`Embeddings`]),
//! independent of any wire format. As for chat ([`crate::chat`]), everything the gRPC contract
//! carries has a place here, so a provider client either puts a field on the wire or refuses the
//! request naming it (the router then tries the next route).

use crate::chat::estimate_tokens;

/// What is embedded: texts, or texts already split into token ids by the model's tokenizer
/// (what langchain-openai sends by default). Never empty, none of them empty (validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inputs {
    Texts(Vec<String>),
    Tokens(Vec<Vec<u32>>),
}

/// What the vectors are for. Cohere needs it (its models embed queries and documents
/// differently), Gemini takes it as `taskType`; the OpenAI family has no such field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputType {
    SearchDocument,
    SearchQuery,
    Classification,
    Clustering,
}

impl InputType {
    /// The contract's (and Cohere's) name.
    pub fn as_str(self) -> &'static str {
        match self {
            InputType::SearchDocument => "search_document",
            InputType::SearchQuery => "search_query",
            InputType::Classification => "classification",
            InputType::Clustering => "clustering",
        }
    }

    pub fn parse(s: &str) -> Option<InputType> {
        Some(match s {
            "search_document" => InputType::SearchDocument,
            "search_query" => InputType::SearchQuery,
            "classification" => InputType::Classification,
            "clustering" => InputType::Clustering,
            _ => return None,
        })
    }
}

/// A validated embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedInput {
    pub inputs: Inputs,
    /// Wanted vector size (only sent to routes whose catalogue entry says they can shorten).
    pub dimensions: Option<u32>,
    /// The end user's id (OpenAI's abuse monitoring).
    pub user: Option<String>,
    pub input_type: Option<InputType>,
}

impl EmbedInput {
    /// How many vectors the answer must hold.
    pub fn len(&self) -> usize {
        match &self.inputs {
            Inputs::Texts(t) => t.len(),
            Inputs::Tokens(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Prompt tokens: exact for token ids (each id is one token), about 4 characters a token for
    /// texts, as the chat path estimates. Used for the quota hold, and as the usage when a
    /// provider reports none (Gemini's embeddings answers carry no token count).
    pub fn estimated_tokens(&self) -> u32 {
        match &self.inputs {
            Inputs::Texts(t) => t
                .iter()
                .map(|s| estimate_tokens(s.chars().count()))
                .fold(0u32, u32::saturating_add),
            Inputs::Tokens(t) => {
                u32::try_from(t.iter().map(Vec::len).sum::<usize>()).unwrap_or(u32::MAX)
            }
        }
    }
}

/// The vectors, one per input in input order, and the prompt tokens the provider counted
/// (`None` when it reports none).
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    pub prompt_tokens: Option<u32>,
}

impl Embeddings {
    /// Checks an answer against its request: one vector per input, none empty, and of the asked
    /// size when `dimensions` was sent (a provider ignoring it would be a silent drop).
    pub fn checked(self, input: &EmbedInput) -> Result<Embeddings, String> {
        if self.vectors.len() != input.len() {
            return Err(format!(
                "{} vectors for {} inputs",
                self.vectors.len(),
                input.len()
            ));
        }
        if let Some(i) = self.vectors.iter().position(Vec::is_empty) {
            return Err(format!("empty vector at index {i}"));
        }
        if let Some(d) = input.dimensions
            && let Some(v) = self
                .vectors
                .iter()
                .find(|v| u32::try_from(v.len()).ok() != Some(d))
        {
            return Err(format!("{} dimensions where {d} were asked", v.len()));
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &[&str]) -> EmbedInput {
        EmbedInput {
            inputs: Inputs::Texts(t.iter().map(|s| (*s).to_owned()).collect()),
            dimensions: None,
            user: None,
            input_type: None,
        }
    }

    #[test]
    fn token_estimates_and_answer_checks() {
        assert_eq!(texts(&["abcd", "abcde"]).estimated_tokens(), 3);
        let tokens = EmbedInput {
            inputs: Inputs::Tokens(vec![vec![1, 2, 3], vec![4]]),
            ..texts(&[])
        };
        assert_eq!(tokens.estimated_tokens(), 4);
        let two = texts(&["a", "b"]);
        let answer = |vectors: Vec<Vec<f32>>| Embeddings {
            vectors,
            prompt_tokens: None,
        };
        assert!(answer(vec![vec![1.0], vec![2.0]]).checked(&two).is_ok());
        assert!(answer(vec![vec![1.0]]).checked(&two).is_err());
        assert!(answer(vec![vec![1.0], vec![]]).checked(&two).is_err());
        let shortened = EmbedInput {
            dimensions: Some(2),
            ..two
        };
        assert!(
            answer(vec![vec![1.0, 0.0], vec![1.0]])
                .checked(&shortened)
                .is_err()
        );
    }
}
