//! Per-command call counts from `INFO commandstats`, to assert which
//! commands (and how many) an operation sent to the server.
//!
//! ```no_run
//! use kv_module_tests::TestRedis;
//! use kv_module_tests::command_stats::{command_calls, delta};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let redis = TestRedis::start().await;
//! let mut raw = redis.raw(0).await;
//! let before = command_calls(&mut raw).await;
//! // ... run the operation under test ...
//! let after = command_calls(&mut raw).await;
//! assert!(delta(&before, &after).is_empty());
//! # }
//! ```
//!
//! The counters are server-wide (every client, every database), so a
//! delta is only meaningful while nothing else talks to the server: use a
//! [`TestRedis`](crate::TestRedis) per test.

use std::collections::BTreeMap;

/// The `INFO` command, which [`command_calls`] itself sends and [`delta`]
/// therefore leaves out.
const INFO_COMMAND: &str = "info";

/// The number of calls of every command the server has run since it
/// started (or since `CONFIG RESETSTAT`), keyed by lower-case command name
/// (`get`, `set`, `client|setinfo` for subcommands).
///
/// # Panics
///
/// When the server does not answer `INFO commandstats`.
pub async fn command_calls(conn: &mut redis::aio::MultiplexedConnection) -> BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap_or_else(|err| panic!("INFO commandstats failed: {err}"));
    parse_command_calls(&info)
}

/// Parses the call counts out of an `INFO commandstats` reply: lines such
/// as `cmdstat_get:calls=3,usec=12,usec_per_call=4.00,...`. Other lines
/// (the `# Commandstats` header, blank lines) are ignored.
///
/// # Panics
///
/// On a `cmdstat_` line without a well-formed `calls=` field: a format
/// change in the server must fail loudly rather than read as "no calls".
pub fn parse_command_calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| line.trim().strip_prefix("cmdstat_"))
        .map(|stat| {
            let (name, fields) = stat
                .split_once(':')
                .unwrap_or_else(|| panic!("no `:` in commandstats line `cmdstat_{stat}`"));
            let calls = fields
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))
                .and_then(|calls| calls.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no numeric `calls=` in `cmdstat_{stat}`"));
            (name.to_owned(), calls)
        })
        .collect()
}

/// The commands whose call count changed between two readings, with the
/// number of calls in between. The `info` command that took the readings
/// is left out.
pub fn delta(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter(|(name, _)| name.as_str() != INFO_COMMAND)
        .filter_map(|(name, &calls)| {
            let earlier = before.get(name).copied().unwrap_or(0);
            // Counts only go down on `CONFIG RESETSTAT`; report the new
            // count then rather than underflow.
            let changed = if calls >= earlier {
                calls - earlier
            } else {
                calls
            };
            (changed != 0).then(|| (name.clone(), changed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as redis-server 7.0 writes it, with CRLF line ends.
    const INFO: &str = "# Commandstats\r\n\
        cmdstat_get:calls=3,usec=12,usec_per_call=4.00,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_client|setinfo:calls=2,usec=5,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_info:calls=7,usec=300,usec_per_call=42.86,rejected_calls=0,failed_calls=0\r\n\
        cmdstat_set:calls=10,usec=40,usec_per_call=4.00,rejected_calls=1,failed_calls=0\r\n\
        \r\n";

    fn map(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries
            .iter()
            .map(|(name, calls)| ((*name).to_owned(), *calls))
            .collect()
    }

    #[test]
    fn parses_calls_per_command_including_subcommands() {
        assert_eq!(
            parse_command_calls(INFO),
            map(&[("client|setinfo", 2), ("get", 3), ("info", 7), ("set", 10)])
        );
    }

    #[test]
    fn parses_an_empty_section_as_no_calls() {
        assert!(parse_command_calls("# Commandstats\r\n").is_empty());
        assert!(parse_command_calls("").is_empty());
    }

    #[test]
    #[should_panic(expected = "calls=")]
    fn rejects_a_line_without_calls() {
        parse_command_calls("cmdstat_get:usec=3\r\n");
    }

    #[test]
    fn delta_keeps_changed_commands_and_drops_info() {
        let before = map(&[("get", 3), ("info", 1), ("set", 10), ("ping", 1)]);
        let after = map(&[
            ("get", 5),
            ("info", 2),
            ("set", 10),
            ("ping", 1),
            ("del", 1),
        ]);
        assert_eq!(delta(&before, &after), map(&[("del", 1), ("get", 2)]));
    }

    #[test]
    fn delta_of_equal_readings_is_empty() {
        let reading = parse_command_calls(INFO);
        assert!(delta(&reading, &reading).is_empty());
    }

    #[test]
    fn delta_after_a_stats_reset_reports_the_new_count() {
        let before = map(&[("get", 9)]);
        let after = map(&[("get", 2)]);
        assert_eq!(delta(&before, &after), map(&[("get", 2)]));
    }
}
