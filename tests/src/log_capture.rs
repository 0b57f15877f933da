//! [`LogCapture`]: every span and event as text, for tests that prove what
//! the logs do not hold (codes, session ids, addresses) or do hold (a
//! request id beside a 5xx's cause).

use std::fmt::{Debug, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Records every span (name and fields) and event (level, target, fields)
/// as text, at every level.
#[derive(Clone, Default)]
pub struct LogCapture {
    text: Arc<Mutex<String>>,
    next_id: Arc<AtomicU64>,
}

impl LogCapture {
    /// A capture as this thread's default subscriber until the guard
    /// drops.
    ///
    /// Take it before anything logs: `tracing` caches per call site
    /// whether any subscriber wants it, and a call site first hit on a
    /// thread with no capture while no other capture is alive would be
    /// cached as unwanted, silencing it for the tests after.
    pub fn install() -> (Self, tracing::subscriber::DefaultGuard) {
        let capture = Self::default();
        let guard = tracing::subscriber::set_default(capture.clone());
        (capture, guard)
    }

    /// Everything recorded so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn write(&self, f: impl FnOnce(&mut String)) {
        f(&mut self.text.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl Subscriber for LogCapture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.write(|text| {
            text.push_str("span ");
            text.push_str(span.metadata().name());
            span.record(&mut Fields(text));
            text.push('\n');
        });
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        self.write(|text| {
            text.push_str("record");
            values.record(&mut Fields(text));
            text.push('\n');
        });
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        self.write(|text| {
            let _ = write!(
                text,
                "{} {}",
                event.metadata().level(),
                event.metadata().target()
            );
            event.record(&mut Fields(text));
            text.push('\n');
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
