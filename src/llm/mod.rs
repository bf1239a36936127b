//! LLM streaming mode (OpenAI-compatible chat and completions streams): what each chunk says, sans IO.

pub mod chunk;
pub mod prompt;
pub mod scenario;
pub mod timeline;
