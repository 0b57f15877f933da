//! `LOG_FORMAT=json`'s layer: one JSON object per line, written straight
//! into one buffer per thread, with no intermediate JSON values.
//!
//! A line:
//!
//! ```text
//! {"timestamp":"2026-12-02T00:54:41.264483Z","level":"INFO","target":"example_app::request_span",
//!  "fields":{"message":"response","status":200,"elapsed_ms":0},
//!  "spans":[{"name":"request","request_id":"…","method":"GET","route":"/api/users/{id}"}]}
//! ```
//!
//! (on one line). `spans` lists the event's spans from the outermost, so a
//! line logged inside a span nested in the request's (a store call) still
//! carries the request's fields; it is left out when the event is in no
//! span. A span's fields are written as JSON once, when it is created (and
//! when a field is recorded later); each line copies that text. Events
//! bridged from the `log` crate get their own target and level (not
//! `log`'s), and their `log.*` bookkeeping fields are not written.
//!
//! Why not a general JSON formatter: `tracing-subscriber`'s `json()` parses
//! every span's fields again for each line, and `json-subscriber` builds a
//! `serde_json::Value` per line and per field; at `RUST_LOG=info` those
//! were a tenth of a cached user read's CPU under load (issue 15,
//! `docs/BENCHMARKS.md`). This one does only what a line needs: escape
//! strings and copy text.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The layer: formats each enabled event as a JSON line and writes it to
/// `W` in one `write_all`.
pub struct JsonLines<W> {
    make_writer: W,
}

impl<W> JsonLines<W> {
    /// A layer writing to `make_writer` (for the app, the non-blocking
    /// writer).
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// A span's fields as JSON members (`"a":1,"b":"x"`), kept in the span's
/// extensions.
struct SpanFields(String);

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        // Room for a request span's fields without growing.
        let mut fields = String::with_capacity(128);
        attrs.record(&mut Members::new(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            // A field recorded again appears again: JSON readers keep the
            // last value of a repeated member.
            Some(SpanFields(fields)) => values.record(&mut Members::new(fields)),
            None => {
                let mut fields = String::new();
                values.record(&mut Members::new(&mut fields));
                extensions.insert(SpanFields(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        thread_local! {
            static LINE: RefCell<String> = const { RefCell::new(String::new()) };
        }
        // `try_with`: an event logged while the thread's locals are torn
        // down (from another local's `Drop`) is dropped, not a panic.
        let _ = LINE.try_with(|line| {
            // A subscriber re-entered from a writer (it should not happen)
            // finds the buffer taken: that line is dropped, not a panic.
            let Ok(mut line) = line.try_borrow_mut() else {
                return;
            };
            line.clear();
            let normalized = event.normalized_metadata();
            let metadata = normalized.as_ref().unwrap_or_else(|| event.metadata());
            line.push_str("{\"timestamp\":\"");
            write_timestamp(&mut line, SystemTime::now());
            line.push_str("\",\"level\":\"");
            line.push_str(metadata.level().as_str());
            line.push_str("\",\"target\":");
            push_json_str(&mut line, metadata.target());
            line.push_str(",\"fields\":{");
            event.record(&mut Members::new(&mut line));
            line.push('}');
            if let Some(scope) = ctx.event_scope(event) {
                line.push_str(",\"spans\":[");
                for (i, span) in scope.from_root().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str("{\"name\":");
                    push_json_str(&mut line, span.name());
                    if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>()
                        && !fields.is_empty()
                    {
                        line.push(',');
                        line.push_str(fields);
                    }
                    line.push('}');
                }
                line.push(']');
            }
            line.push_str("}\n");
            // A log line that cannot be written is dropped: there is
            // nowhere to report it.
            let _ = self
                .make_writer
                .make_writer_for(metadata)
                .write_all(line.as_bytes());
            // A rare huge line does not keep its buffer for the thread's
            // life.
            if line.capacity() > 64 * 1024 {
                *line = String::new();
            }
        });
    }
}

/// Writes visited fields as JSON members, comma-separated, after whatever
/// `out` already holds.
struct Members<'a> {
    out: &'a mut String,
    /// Whether the next member needs a comma before it.
    comma: bool,
}

impl<'a> Members<'a> {
    fn new(out: &'a mut String) -> Self {
        let comma = !out.is_empty() && !out.ends_with('{');
        Self { out, comma }
    }

    /// Writes `"name":` (and the comma before it); `false` for the `log`
    /// bridge's own fields, which are not written.
    fn key(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name.starts_with("log.") {
            return false;
        }
        if self.comma {
            self.out.push(',');
        }
        self.comma = true;
        push_json_str(self.out, name);
        self.out.push(':');
        true
    }

    /// Writes an integer member.
    fn number(&mut self, field: &Field, value: impl fmt::Display) {
        if self.key(field) {
            let _ = write!(self.out, "{value}");
        }
    }
}

impl Visit for Members<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.key(field) {
            push_json_str(self.out, value);
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_i128(&mut self, field: &Field, value: i128) {
        self.number(field, value);
    }

    fn record_u128(&mut self, field: &Field, value: u128) {
        self.number(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if self.key(field) {
            self.out.push_str(if value { "true" } else { "false" });
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if self.key(field) {
            if value.is_finite() {
                // Rust prints finite floats as plain decimals: valid JSON.
                let _ = write!(self.out, "{value}");
            } else {
                // JSON has no NaN or infinity: written as a string.
                let _ = write!(self.out, "\"{value}\"");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.key(field) {
            self.out.push('"');
            let _ = write!(Escaped(self.out), "{value:?}");
            self.out.push('"');
        }
    }
}

/// Appends `s` as a JSON string, quotes included.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let _ = Escaped(out).write_str(s);
    out.push('"');
}

/// A `fmt::Write` that escapes what it is given for the inside of a JSON
/// string: quotes, backslashes and control characters.
struct Escaped<'a>(&'a mut String);

impl fmt::Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let bytes = s.as_bytes();
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let escape: &str = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x00..=0x1f | 0x7f => "",
                _ => continue,
            };
            // Every byte matched above is ASCII, so `i` is a char boundary.
            self.0.push_str(&s[start..i]);
            if escape.is_empty() {
                let _ = write!(self.0, "\\u{b:04x}");
            } else {
                self.0.push_str(escape);
            }
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

/// Appends `time` as RFC 3339 in UTC with microseconds
/// (`2026-12-02T00:54:41.264483Z`). The date and time up to the second are
/// formatted once per second per thread.
fn write_timestamp(out: &mut String, time: SystemTime) {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    // A clock before 1970 is written as the epoch.
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let cached = SECOND.try_with(|cached| match cached.try_borrow_mut() {
        Ok(mut cached) => {
            if cached.0 != secs {
                cached.1.clear();
                format_second(&mut cached.1, secs);
                cached.0 = secs;
            }
            out.push_str(&cached.1);
            true
        }
        Err(_) => false,
    });
    // No cache (taken, or the thread is ending): formatted in place.
    if cached != Ok(true) {
        format_second(out, secs);
    }
    let _ = write!(out, ".{:06}Z", since_epoch.subsec_micros());
}

/// `YYYY-MM-DDTHH:MM:SS` of `secs` since the Unix epoch, in UTC.
fn format_second(out: &mut String, secs: u64) {
    let days = secs / 86_400;
    let in_day = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    );
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A writer collecting every line in memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    /// Runs `f` under a subscriber with the layer and returns each line
    /// parsed.
    fn capture(f: impl FnOnce()) -> Vec<serde_json::Value> {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(lines.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = lines.0.lock().expect("lines").clone();
        let text = String::from_utf8(bytes).expect("UTF-8");
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect()
    }

    #[test]
    fn every_field_type_and_awkward_strings_round_trip() {
        let awkward = "quote \" backslash \\ newline \n tab \t bell \u{7} del \u{7f} é ✓";
        let lines = capture(|| {
            tracing::warn!(
                s = awkward,
                d = ?awkward,
                shown = %awkward,
                i = -3_i64,
                u = 7_u64,
                big = u128::MAX,
                b = true,
                f = 1.5_f64,
                nan = f64::NAN,
                "msg {}",
                "with \"args\""
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], module_path!());
        let fields = &line["fields"];
        assert_eq!(fields["message"], "msg with \"args\"");
        assert_eq!(fields["s"], awkward);
        assert_eq!(fields["d"], format!("{awkward:?}"));
        assert_eq!(fields["shown"], awkward);
        assert_eq!(fields["i"], -3);
        assert_eq!(fields["u"], 7);
        assert_eq!(fields["big"].as_f64(), Some(u128::MAX as f64));
        assert_eq!(fields["b"], true);
        assert_eq!(fields["f"], 1.5);
        assert_eq!(fields["nan"], "NaN");
        assert!(
            line.get("spans").is_none(),
            "no spans outside a span: {line}"
        );
    }

    #[test]
    fn spans_are_listed_from_the_outermost_with_fields_recorded_later() {
        let lines = capture(|| {
            let outer = tracing::info_span!(
                "request",
                request_id = "r-1",
                status = tracing::field::Empty
            );
            let _outer = outer.enter();
            outer.record("status", 200_u64);
            let inner = tracing::info_span!("store");
            let _inner = inner.enter();
            tracing::info!("inside");
        });
        let spans = lines[0]["spans"].as_array().expect("a span list");
        assert_eq!(spans.len(), 2, "{spans:?}");
        assert_eq!(spans[0]["name"], "request");
        assert_eq!(spans[0]["request_id"], "r-1");
        assert_eq!(spans[0]["status"], 200);
        assert_eq!(spans[1], serde_json::json!({ "name": "store" }));
    }

    #[test]
    fn log_crate_records_keep_their_target_and_level_without_bookkeeping_fields() {
        let lines = capture(|| {
            let record = tracing_log::log::Record::builder()
                .args(format_args!("from log"))
                .level(tracing_log::log::Level::Warn)
                .target("some_crate::module")
                .module_path(Some("some_crate::module"))
                .file(Some("src/module.rs"))
                .line(Some(7))
                .build();
            tracing_log::format_trace(&record).expect("bridged");
        });
        let line = &lines[0];
        assert_eq!(line["level"], "WARN", "{line}");
        assert_eq!(line["target"], "some_crate::module", "{line}");
        assert_eq!(
            line["fields"],
            serde_json::json!({ "message": "from log" }),
            "{line}"
        );
    }

    #[test]
    fn timestamps_are_rfc_3339_utc_with_microseconds() {
        let mut out = String::new();
        let t = UNIX_EPOCH + Duration::from_micros(1_796_172_881_264_483);
        write_timestamp(&mut out, t);
        assert_eq!(out, "2026-12-02T00:54:41.264483Z");
        // The same second again (cached), then leap-year days and the
        // epoch.
        out.clear();
        write_timestamp(&mut out, t + Duration::from_micros(5));
        assert_eq!(out, "2026-12-02T00:54:41.264488Z");
        for (secs, expected) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (4_107_542_399, "2100-02-28T23:59:59"),
            (4_107_542_400, "2100-03-01T00:00:00"),
        ] {
            let mut s = String::new();
            format_second(&mut s, secs);
            assert_eq!(s, expected, "{secs}");
        }
    }
}
