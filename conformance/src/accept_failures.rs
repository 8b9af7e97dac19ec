//! Counts the accept loops' "out of descriptors" retries, through a process-wide `tracing`
//! subscriber: how a scenario sees whether a loop backed off or spun.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use tracing::field::{Field, Visit};
use tracing::{span, Event, Level, Metadata, Subscriber};

static COUNT: AtomicUsize = AtomicUsize::new(0);

/// How many resource-exhaustion accept failures (sansock-io's `accept failed` warnings) the
/// process logged so far. The first call installs the counting subscriber as the global
/// default; it panics if the process already has one.
pub fn exhaustion_retries() -> usize {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing::subscriber::set_global_default(Counter)
            .expect("no other global tracing subscriber in a reliability test binary");
    });
    COUNT.load(Ordering::SeqCst)
}

struct Counter;

impl Subscriber for Counter {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event()
            && *metadata.level() == Level::WARN
            && metadata.target().starts_with("sansock_io")
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = IsAcceptFailure(false);
        event.record(&mut message);
        if message.0 {
            COUNT.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

struct IsAcceptFailure(bool);

impl Visit for IsAcceptFailure {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" && format!("{value:?}").starts_with("accept failed") {
            self.0 = true;
        }
    }
}
