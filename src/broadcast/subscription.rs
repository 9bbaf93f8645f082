//! What a subscriber asks for, and how its stream started.

#[cfg(doc)]
use super::Hub;
use crate::event::FormattedEvent;

/// What a new subscriber receives: which topics, which tab, where to resume.
///
/// ```
/// use dstar::broadcast::Subscription;
/// use dstar::{Event, FormattedEvent};
///
/// // In a request handler: the tab's id and the `Last-Event-ID` header.
/// let last_event_id: Option<&str> = Some("41");
/// let full_state = FormattedEvent::new(&Event::new("state").data("..."))?;
/// let subscription = Subscription::new()
///     .topic("room-1")
///     .key("tab-7f3a")
///     .last_event_id(last_event_id)
///     .snapshot(full_state);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Subscription {
    pub(super) topics: Vec<Box<str>>,
    pub(super) key: Option<String>,
    pub(super) last_event_id: Option<String>,
    pub(super) snapshot: Vec<FormattedEvent>,
    pub(super) resume_with: Option<Vec<(Option<Box<str>>, FormattedEvent)>>,
}

impl Subscription {
    /// A subscription to events published to everyone ([`Hub::publish`]).
    pub fn new() -> Self {
        Subscription::default()
    }

    /// Also receive the events published to this topic
    /// ([`Hub::publish_to`]). Call it once per topic.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into().into_boxed_str());
        self
    }

    /// Identifies the client (a browser tab, say): subscribing with a key
    /// that is already subscribed finishes the older stream and replaces it.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Resume after this event id: pass the request's `Last-Event-ID`
    /// header as it is. `None` or an empty id asks for no replay.
    pub fn last_event_id(mut self, id: Option<&str>) -> Self {
        self.last_event_id = id.filter(|id| !id.is_empty()).map(str::to_string);
        self
    }

    /// An event to open the stream with unless it is resumed by replay: for
    /// a new client, and for one whose `Last-Event-ID` the hub no longer
    /// holds. Render your full state here. Call it once per event.
    pub fn snapshot(mut self, event: FormattedEvent) -> Self {
        self.snapshot.push(event);
        self
    }

    /// Resume with these events instead of the ones in the hub's ring: every
    /// event published after the [`last_event_id`](Subscription::last_event_id),
    /// oldest first, each with the topic it was published to (`None` for
    /// everyone), up to and including the newest one this hub has published.
    ///
    /// This is for a hub fed from a durable log that outlives its ring, such
    /// as a Redis stream (see [`redis_bridge`](crate#features)): the caller
    /// reads what the client missed from the log, and subscribes while
    /// nothing else publishes to the hub, so that the live events follow
    /// with no gap and no duplicate. The hub keeps only the events of the
    /// subscription's topics, and [`Hub::subscribe`] returns
    /// [`Replay::Replayed`] with their number; the snapshot is not sent.
    pub fn resume_with(mut self, missed: Vec<(Option<String>, FormattedEvent)>) -> Self {
        let missed = missed
            .into_iter()
            .map(|(topic, event)| (topic.map(String::into_boxed_str), event))
            .collect();
        self.resume_with = Some(missed);
        self
    }
}

/// How a subscription started, as returned by [`Hub::subscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Replay {
    /// No `Last-Event-ID` was given: the stream opens with the snapshot.
    NotRequested,
    /// The stream opens with this many events published after the given id
    /// (0 when the client had missed nothing).
    Replayed(usize),
    /// The id is unknown, or older than the events the hub keeps (or replay
    /// is off): nothing was replayed and the stream opens with the snapshot.
    Unavailable,
}
