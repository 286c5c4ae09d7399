//! Pieces of the benchmark suite that tests reuse: the zero-latency OpenAI-compatible upstream.

pub mod upstream;
