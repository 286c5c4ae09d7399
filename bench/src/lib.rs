//! Pieces of the benchmark suite shared by its two programs (`loadgen`, in-process; `deployed`,
//! the release binaries under wrk) and by tests: the closed-loop load, `/proc` readings and the
//! zero-latency OpenAI-compatible upstream.

pub mod load;
pub mod procstat;
pub mod profile;
pub mod upstream;
