//! The peers. Each implements the six workloads with the same shape:
//!
//! - **ping-pong** and **ring** share one `Node` actor: on `Token(left)` it forwards `left - 1` to its
//!   `next` (or reports done at 0). Ping-pong is a ring of two nodes passing `2 × round trips` hops.
//! - **fan-in**: one `Sink` counts `Data` messages; 4 sender tasks on the same thread each tell it a quarter.
//! - **request-reply**: a `Server` answers `Request(v)` with `2 v`; one client task asks sequentially
//!   (the library's own ask/call/send-and-await-result).
//! - **spawn**: spawn `n` `One` actors, then tell each one message; each reports done and stops itself.
//! - **memory**: spawn `n` idle actors, let them start, count live heap bytes per actor.
//!
//! "Done" goes over an `async_channel` to the measuring task (works on every executor).

pub mod actix;
pub mod kameo;
pub mod ractor;
pub mod xtra;

use std::time::Duration;

/// Long enough for freshly spawned actors to run their start-up on a single thread.
pub const SETTLE: Duration = Duration::from_millis(200);

/// Waits for `n` done reports.
pub async fn wait_done(done: &async_channel::Receiver<()>, n: u64) {
    for _ in 0..n {
        done.recv().await.expect("reporters alive");
    }
}
