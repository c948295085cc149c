//! A request's channel from the engine loop to its route, bounded by the text its client has
//! not read yet rather than by a count of events: the engine hands a stream's text over in
//! pieces of any length (a character, or every character of a flush interval), and a slow
//! reader is cut once it leaves more than the bound unread, however the text was cut up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::serve::event::Event;

/// The engine's end: one clone per choice.
#[derive(Clone)]
pub struct Outbox {
    events: UnboundedSender<Event>,
    /// Bytes of text sent and not yet taken by the route.
    unread: Arc<AtomicUsize>,
    most_unread: usize,
}

/// The route's end.
pub struct Inbox {
    events: UnboundedReceiver<Event>,
    unread: Arc<AtomicUsize>,
}

/// A channel whose reader may leave at most `most_unread` bytes of text unread.
pub fn text_channel(most_unread: usize) -> (Outbox, Inbox) {
    let (events, receiver) = unbounded_channel();
    let unread = Arc::new(AtomicUsize::new(0));
    (Outbox { events, unread: Arc::clone(&unread), most_unread }, Inbox { events: receiver, unread })
}

impl Outbox {
    /// Sends choice `choice`'s next `text` (nothing when it is empty): false if the client is
    /// gone, or has left so much unread that this would pass the bound (the stream is then
    /// cut).
    pub fn send_text(&self, choice: usize, text: &[u8]) -> bool {
        if text.is_empty() {
            return !self.events.is_closed();
        }
        if self.unread.load(Ordering::Relaxed).saturating_add(text.len()) > self.most_unread {
            return false;
        }
        self.unread.fetch_add(text.len(), Ordering::Relaxed);
        let text = String::from_utf8_lossy(text).into_owned();
        self.events.send(Event::Text { choice, text }).is_ok()
    }

    /// Sends an event that holds no text (a choice's end); a client that is gone misses it.
    pub fn send_end(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// The client went away.
    pub fn is_closed(&self) -> bool {
        self.events.is_closed()
    }
}

impl Inbox {
    /// The next event, `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        let event = self.events.recv().await;
        self.taken(event)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        let event = self.events.try_recv().ok();
        self.taken(event)
    }

    /// The next event, waiting for it on this thread (not in the runtime).
    #[cfg(test)]
    pub fn blocking_recv(&mut self) -> Option<Event> {
        let event = self.events.blocking_recv();
        self.taken(event)
    }

    fn taken(&self, event: Option<Event>) -> Option<Event> {
        if let Some(Event::Text { text, .. }) = &event {
            self.unread.fetch_sub(text.len(), Ordering::Relaxed);
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound counts bytes of text, whatever the events: taking text makes room again.
    #[test]
    fn a_reader_may_leave_at_most_the_bound_unread() {
        let (outbox, mut inbox) = text_channel(5);
        assert!(outbox.send_text(0, b"abc") && outbox.send_text(1, b"de"));
        assert!(!outbox.send_text(0, b"f"), "six bytes unread");
        assert!(matches!(inbox.try_recv(), Some(Event::Text { choice: 0, text }) if text == "abc"));
        assert!(outbox.send_text(0, b"fgh"));
        assert!(!outbox.send_text(0, b"i"));
        outbox.send_end(Event::Finished { choice: 0, reason: crate::serve::event::FinishReason::Stop, generated: 0 });
        assert!(matches!(inbox.try_recv(), Some(Event::Text { choice: 1, .. })));
        assert!(matches!(inbox.try_recv(), Some(Event::Text { choice: 0, text }) if text == "fgh"));
        assert!(matches!(inbox.try_recv(), Some(Event::Finished { .. })));
        assert!(outbox.send_text(0, b"12345"));
        drop(inbox);
        assert!(outbox.is_closed() && !outbox.send_text(0, b"") && !outbox.send_text(0, b"x"));
    }
}
