//! [`JsonLayer`]: the `LOG_FORMAT=json` lines, one JSON object per event,
//! in the shape of `tracing-subscriber`'s JSON format with the current
//! span:
//!
//! ```text
//! {"timestamp":"2026-12-01T16:18:30.854274Z","level":"INFO",
//!  "fields":{"message":"response","status":200,"elapsed_ms":0},
//!  "target":"example_app::request_span",
//!  "span":{"request_id":"0193…","method":"GET","route":"/api/users/{id}","name":"request"}}
//! ```
//!
//! (one line in the log). `span` is absent outside any span; it holds the
//! current span's fields, then those of its ancestors that it does not
//! name itself (as they were when it was created), then the current
//! span's `name`: a line logged in a span nested in the request's (a
//! store call's) still carries `request_id`.
//!
//! Why not `tracing_subscriber::fmt().json()`: it keeps a span's fields as
//! a JSON string and parses it back into a map (allocating every key and
//! value) for every event, and allocates for every field of the event.
//! At `RUST_LOG=info` the request's span and its one `response` line cost
//! the example app about a quarter of its throughput on a cache hit
//! (issue 15). Here a span's fields are rendered once, when the span is
//! created, into JSON text kept in the span's extensions; an event is
//! written into a per-thread buffer that is reused, and handed to the
//! writer in one `write`. Strings are escaped by `serde_json`; the
//! timestamp is `tracing-subscriber`'s own (RFC 3339, UTC, microseconds).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// A buffer that grew past this (a huge field) is not kept for the next
/// line.
const KEPT_CAPACITY: usize = 64 * 1024;

/// A `tracing_subscriber` layer writing each event as one JSON line
/// through `W` (see the [module](self) for the shape). It filters
/// nothing: put a filter before it.
#[derive(Debug)]
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W>
where
    W: for<'writer> MakeWriter<'writer> + 'static,
{
    /// A layer writing through `make_writer` (each line is one
    /// `write_all` of a whole line, ending in `\n`).
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

/// A span's fields (its own, then its ancestors' it does not shadow) as
/// JSON object members without the braces: `"a":1,"b":"x"`. Empty when
/// the span has no field.
struct SpanFields(Vec<u8>);

/// Per-thread buffers: the line being written, and text being formatted
/// (a `Debug` or `Display` value, the timestamp) before it is escaped.
#[derive(Default)]
struct Buffers {
    line: Vec<u8>,
    text: String,
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::new(Buffers::default());
}

/// Runs `f` with this thread's buffers, or with new ones if they are in
/// use or gone (the thread is ending), and clears them afterwards.
/// (`tracing` does not hand the layer an event logged while it formats a
/// value of another, so "in use" is only a defence.)
fn with_buffers<R>(mut f: impl FnMut(&mut Buffers) -> R) -> R {
    BUFFERS
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut buffers) => {
                let result = f(&mut buffers);
                buffers.line.clear();
                buffers.text.clear();
                if buffers.line.capacity() > KEPT_CAPACITY {
                    buffers.line = Vec::new();
                }
                if buffers.text.capacity() > KEPT_CAPACITY {
                    buffers.text = String::new();
                }
                result
            }
            Err(_) => f(&mut Buffers::default()),
        })
        .unwrap_or_else(|_| f(&mut Buffers::default()))
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    W: for<'writer> MakeWriter<'writer> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut own = Vec::with_capacity(128);
        with_buffers(|buffers| {
            attrs.record(&mut Members::new(&mut own, &mut buffers.text));
        });
        let inherited = span.parent().and_then(|parent| {
            parent
                .extensions()
                .get::<SpanFields>()
                .filter(|fields| !fields.0.is_empty())
                .map(|fields| merge(&fields.0, &own))
        });
        span.extensions_mut()
            .insert(SpanFields(inherited.unwrap_or(own)));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut added = Vec::new();
        with_buffers(|buffers| {
            values.record(&mut Members::new(&mut added, &mut buffers.text));
        });
        if added.is_empty() {
            return;
        }
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(fields) => fields.0 = merge(&fields.0, &added),
            None => extensions.insert(SpanFields(added)),
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        with_buffers(|buffers| {
            let Buffers { line, text } = buffers;
            // A `log` record (through `tracing-log`) under its own target.
            let normalized = event.normalized_metadata();
            let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());

            line.extend_from_slice(b"{\"timestamp\":");
            if SystemTime.format_time(&mut Writer::new(text)).is_ok() {
                json_string(line, text);
            } else {
                line.extend_from_slice(b"null");
            }
            text.clear();
            line.extend_from_slice(b",\"level\":\"");
            line.extend_from_slice(meta.level().as_str().as_bytes());
            line.extend_from_slice(b"\",\"fields\":{");
            event.record(&mut Members::new(line, text));
            line.extend_from_slice(b"},\"target\":");
            json_string(line, meta.target());
            if let Some(span) = ctx.event_span(event) {
                line.extend_from_slice(b",\"span\":{");
                if let Some(fields) = span.extensions().get::<SpanFields>()
                    && !fields.0.is_empty()
                {
                    line.extend_from_slice(&fields.0);
                    line.push(b',');
                }
                line.extend_from_slice(b"\"name\":");
                json_string(line, span.name());
                line.push(b'}');
            }
            line.extend_from_slice(b"}\n");
            // Nowhere to report a failed write to: the log is the channel.
            let _ = self
                .make_writer
                .make_writer_for(meta)
                .write_all(line.as_slice());
        });
    }
}

/// Appends `value` as a JSON string (quoted and escaped by `serde_json`).
fn json_string(out: &mut Vec<u8>, value: &str) {
    // Writing into a `Vec` cannot fail, and a `str` always serializes.
    let _ = serde_json::to_writer(out, value);
}

/// `base` members with `added` ones over them: those of `added` first,
/// then those of `base` that `added` does not name (the slow path: a span
/// nested in another, or a field recorded after the span's creation).
fn merge(base: &[u8], added: &[u8]) -> Vec<u8> {
    let object = |members: &[u8]| {
        let mut text = Vec::with_capacity(members.len() + 2);
        text.push(b'{');
        text.extend_from_slice(members);
        text.push(b'}');
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&text)
    };
    let (Ok(base), Ok(added_map)) = (object(base), object(added)) else {
        // Not reached: both were written by `Members`.
        return added.to_vec();
    };
    let mut out = added.to_vec();
    for (key, value) in base.iter().filter(|(key, _)| !added_map.contains_key(*key)) {
        if !out.is_empty() {
            out.push(b',');
        }
        json_string(&mut out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    out
}

/// Writes the fields it visits as JSON object members into `out`;
/// `text` is scratch space for formatted values.
struct Members<'a> {
    out: &'a mut Vec<u8>,
    text: &'a mut String,
    first: bool,
}

impl<'a> Members<'a> {
    fn new(out: &'a mut Vec<u8>, text: &'a mut String) -> Self {
        let first = out.last().is_none_or(|&b| b == b'{');
        Self { out, text, first }
    }

    /// Writes `"name":` (a raw identifier without its `r#`), after a comma
    /// unless it is the first member.
    fn key(&mut self, field: &Field) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        let name = field.name();
        json_string(self.out, name.strip_prefix("r#").unwrap_or(name));
        self.out.push(b':');
    }

    fn number(&mut self, field: &Field, value: impl std::fmt::Display) {
        self.key(field);
        let _ = write!(self.out, "{value}");
    }
}

impl Visit for Members<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // A `log` record's metadata, already in the line's `target`.
        if field.name().starts_with("log.") {
            return;
        }
        self.text.clear();
        // `Debug` of a `format_args!` message or of a `%value` (`Display`).
        let _ = write!(self.text, "{value:?}");
        self.key(field);
        json_string(self.out, self.text);
        self.text.clear();
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        json_string(self.out, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.number(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        // `serde_json` writes a non-finite number as `null`.
        let _ = serde_json::to_writer(&mut *self.out, &value);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// Collects every line written.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;

        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Runs `f` under a subscriber with the layer (everything enabled) and
    /// returns each line written, parsed.
    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(lines.clone()));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = lines.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes).expect("UTF-8 lines");
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
            })
            .collect()
    }

    #[test]
    fn a_line_has_the_fields_target_and_current_span() {
        let lines = capture(|| {
            let span = tracing::info_span!("request", request_id = %"id-1", method = %"GET");
            let _entered = span.enter();
            tracing::info!(status = 200u16, elapsed_ms = 3u64, "response");
        });
        let [line] = lines.as_slice() else {
            panic!("one line: {lines:?}")
        };
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["target"], module_path!());
        assert_eq!(
            line["fields"],
            json!({"message": "response", "status": 200, "elapsed_ms": 3})
        );
        assert_eq!(
            line["span"],
            json!({"request_id": "id-1", "method": "GET", "name": "request"})
        );
        let timestamp = line["timestamp"].as_str().unwrap_or_default();
        // `2026-12-01T16:18:30.854274Z`
        assert_eq!(timestamp.len(), 27, "{timestamp}");
        assert!(timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T');
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), 5, "{keys:?}");
    }

    #[test]
    fn a_line_outside_any_span_has_no_span() {
        let lines = capture(|| tracing::warn!(answer = 42i64, ok = true, "started"));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(
            lines[0]["fields"],
            json!({"message": "started", "answer": 42, "ok": true})
        );
        assert!(lines[0].get("span").is_none(), "{}", lines[0]);
    }

    #[test]
    fn numbers_keep_their_type_and_non_finite_floats_are_null() {
        let lines = capture(|| {
            tracing::info!(
                negative = -7i64,
                big = u64::MAX,
                ratio = 0.25f64,
                nan = f64::NAN,
                inf = f64::INFINITY,
                "numbers"
            )
        });
        assert_eq!(
            lines[0]["fields"],
            json!({"message": "numbers", "negative": -7, "big": u64::MAX, "ratio": 0.25,
                   "nan": null, "inf": null})
        );
    }

    /// Every ASCII character, quotes, backslashes and some beyond ASCII
    /// (two, three and four bytes in UTF-8, and the line separators that
    /// JavaScript once did not allow in strings).
    fn nasty() -> String {
        let mut s: String = (0u8..=0x7f).map(char::from).collect();
        s.push_str("\"\\\\\"é€😀\u{2028}\u{2029}\u{fffd}");
        s
    }

    #[test]
    fn strings_are_escaped_in_fields_span_fields_and_messages() {
        let nasty = nasty();
        let lines = capture(|| {
            let span = tracing::info_span!("outer", shown = %nasty, raw = nasty.as_str());
            let _entered = span.enter();
            tracing::info!(debug = ?nasty, display = %nasty, raw = nasty.as_str(), "{nasty}");
        });
        let [line] = lines.as_slice() else {
            panic!("one line: {lines:?}")
        };
        let fields = &line["fields"];
        assert_eq!(fields["message"], nasty.as_str());
        assert_eq!(fields["display"], nasty.as_str());
        assert_eq!(fields["raw"], nasty.as_str());
        assert_eq!(fields["debug"], format!("{nasty:?}"));
        assert_eq!(line["span"]["shown"], nasty.as_str());
        assert_eq!(line["span"]["raw"], nasty.as_str());
    }

    #[test]
    fn the_escaping_is_serde_json_s() {
        // Each character alone, so that a wrong escape is named.
        for c in (0u32..=0x7f)
            .chain([0xe9, 0x2028, 0x1f600])
            .filter_map(char::from_u32)
        {
            let s = c.to_string();
            let mut out = Vec::new();
            json_string(&mut out, &s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&s).unwrap(),
                "{c:?}"
            );
        }
    }

    #[test]
    fn a_nested_span_carries_its_ancestors_fields_unless_it_names_them() {
        let lines = capture(|| {
            let request = tracing::info_span!("request", request_id = %"id-2", route = "/a");
            let _request = request.enter();
            let store = tracing::info_span!("get", store = "users", route = "/b");
            let _store = store.enter();
            tracing::error!("failed");
        });
        assert_eq!(
            lines[0]["span"],
            json!({"store": "users", "route": "/b", "request_id": "id-2", "name": "get"})
        );
    }

    #[test]
    fn a_field_recorded_later_replaces_or_joins_the_span_s() {
        let lines = capture(|| {
            let span = tracing::info_span!(
                "request",
                request_id = %"id-3",
                status = tracing::field::Empty,
                user = tracing::field::Empty
            );
            let _entered = span.enter();
            tracing::info!("before");
            span.record("status", 201u64);
            span.record("user", "u-1");
            span.record("status", 204u64);
            tracing::info!("after");
        });
        assert_eq!(
            lines[0]["span"],
            json!({"request_id": "id-3", "name": "request"})
        );
        assert_eq!(
            lines[1]["span"],
            json!({"request_id": "id-3", "status": 204, "user": "u-1", "name": "request"})
        );
    }

    #[test]
    fn a_raw_identifier_loses_its_prefix() {
        let lines = capture(|| tracing::info!(r#type = "x", "typed"));
        assert_eq!(lines[0]["fields"]["type"], "x", "{}", lines[0]);
    }
}
