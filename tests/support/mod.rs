//! Helpers shared by the integration tests: turn hangs into failures that say what did not happen,
//! and keep deliberate panics off stderr.

#![allow(dead_code)] // each test binary uses some of these

use std::sync::Once;
use std::time::Duration;

use futures_lite::future;

/// The generous bound the tests give an event that should come at once.
pub const LIMIT: Duration = Duration::from_secs(10);

/// Fails (instead of hanging) if `fut` does not complete within `limit`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    future::or(fut, async {
        async_io::Timer::after(limit).await;
        panic!("{what}: did not happen within {limit:?}");
    })
    .await
}

/// The panics these tests cause on purpose start with "boom"; keep them off stderr.
pub fn quiet_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            if !msg.starts_with("boom") {
                default(info);
            }
        }));
    });
}
