//! STUB (replaced by the real parser).
#![allow(dead_code, unused_variables, clippy::all)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseError {
    EventTooLarge,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    pub event_type: &'a [u8],
    pub data: &'a [u8],
    pub last_event_id: &'a [u8],
}
pub struct Parser;
impl Parser {
    pub fn new(max_event_size: usize) -> Parser {
        Parser
    }
    pub fn feed<F: FnMut(Event<'_>)>(&mut self, input: &[u8], on_event: F) -> Result<(), SseError> {
        todo!()
    }
    pub fn finish(&mut self) -> bool {
        todo!()
    }
    pub fn is_mid_event(&self) -> bool {
        todo!()
    }
    pub fn retry_ms(&self) -> Option<u64> {
        todo!()
    }
    pub fn last_event_id(&self) -> &[u8] {
        todo!()
    }
    pub fn reset(&mut self) {
        todo!()
    }
}
