//! Mistakes reported by default: a value read with a type close to its own (`get::<u32>()` on an
//! `i32`), a message name no wait of its tasklet mentions (see [`crate::observe`]).
//!
//! # The rule
//!
//! - Each report is a `tracing` warning (target `tasklets`), so it goes wherever the program's
//!   subscriber sends its logs.
//! - While the program has installed **no** global subscriber, the same line is also written to
//!   standard error, prefixed `tasklets: warning:`: a newcomer who configured nothing still sees it.
//!   Installing any subscriber (`tracing_subscriber::fmt().init()`, …) stops that.
//! - Each distinct mistake is reported once per process (the same message name, value type and asked
//!   type; the same tasklet and name), so a loop that repeats it does not flood the log.
//! - A wrong type is reported only when both types are **confusable**: two primitive numbers (`i32`
//!   and `u32`, `i64` and `i32`, `f32` and `f64`, …), or two string types (`&str`, `String`).
//!   Trying one struct type after another (`take::<Watch>()`, then `take::<GroupChange>()`) is how
//!   code tells message kinds apart, and stays silent.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// The types whose mix-ups are reported.
const NUMBERS: [&str; 14] = [
    "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32",
    "f64",
];
const STRINGS: [&str; 3] = ["&str", "alloc::string::String", "&alloc::string::String"];

/// Whether reading a `stored` value as an `asked` is a mix-up worth a warning.
pub(crate) fn confusable(stored: &str, asked: &str) -> bool {
    stored != asked
        && ((NUMBERS.contains(&stored) && NUMBERS.contains(&asked))
            || (STRINGS.contains(&stored) && STRINGS.contains(&asked)))
}

/// The mistakes reported so far (their keys), so that each is reported once.
fn reported() -> &'static Mutex<HashSet<String>> {
    static REPORTED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    REPORTED.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Reports `text` once per `key`: a `tracing` warning, and a line on standard error while no
/// global subscriber is installed.
pub(crate) fn warn_once(key: String, text: &str) {
    // A plain std lock (not `crate::sync`'s): this set is process-wide, outside any schedule test.
    let first = reported()
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .insert(key);
    if first {
        tracing::warn!(target: "tasklets", "{text}");
        to_stderr_if_unconfigured(text);
    }
}

/// Writes `text` to standard error while the program has installed no global `tracing` subscriber.
pub(crate) fn to_stderr_if_unconfigured(text: &str) {
    if !tracing::dispatcher::has_been_set() {
        eprintln!("tasklets: warning: {text}");
    }
}

/// Reports a value of type `stored` in the message `name` read as an `asked` (if confusable).
pub(crate) fn wrong_type(name: &str, stored: &str, asked: &str) {
    if confusable(stored, asked) {
        warn_once(
            format!("type\0{name}\0{stored}\0{asked}"),
            &format!(
                "message '{name}' holds {stored}, read as {asked}: got None (send and read one type, or use a Key<T>)"
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::confusable;

    #[test]
    fn number_and_string_mix_ups_are_confusable_struct_probes_are_not() {
        assert!(confusable("i32", "u32"));
        assert!(confusable("f64", "f32"));
        assert!(confusable("alloc::string::String", "&str"));
        assert!(!confusable("i32", "i32"));
        assert!(!confusable("my::Watch", "my::GroupChange"));
        assert!(!confusable("i32", "&str"));
    }
}
