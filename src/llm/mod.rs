//! LLM streaming mode (OpenAI-compatible chat and completions streams): what each chunk says, sans IO.

pub mod chunk;
pub(crate) mod prompt;
pub(crate) mod scenario;
pub(crate) mod timeline;
