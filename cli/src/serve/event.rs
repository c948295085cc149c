//! What the engine loop tells a request's route: its choices' text as it is generated, and
//! how each ended.

/// Why a choice ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// `max_tokens` characters.
    Length,
    /// A stop string.
    Stop,
    /// The server is stopping.
    Shutdown,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Length => "length",
            FinishReason::Stop => "stop",
            FinishReason::Shutdown => "shutdown",
        }
    }
}

/// What a request's channel carries.
#[derive(Debug)]
pub enum Event {
    /// More text of choice `choice`.
    Text { choice: usize, text: String },
    /// Choice `choice` ended after `generated` characters.
    Finished { choice: usize, reason: FinishReason, generated: usize },
}
