//! The runner: polls a tasklet body, catches its panic, honours stop requests, and reports its end.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::Shared;
use crate::error::Exit;

/// Turns a panic payload into its message.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + std::marker::Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// What happens when one run of a tasklet body ends: the tasklet finishes ([`Core`]) or, for a
/// supervised child, its supervisor is told and decides.
pub(crate) trait OnEnd<T> {
    fn shared(&self) -> &Arc<Shared>;
    fn ended(&self, result: Result<T, Exit>);
}

pin_project_lite::pin_project! {
    /// Drives a tasklet body: catches its panic, honours stop requests, and reports how it ended.
    pub(crate) struct Runner<F: Future, E: OnEnd<F::Output>> {
        #[pin]
        body: Option<F>,
        end: E,
        finished: bool,
        registered: bool,
        span: Option<Box<tracing::Span>>,
    }

    impl<F: Future, E: OnEnd<F::Output>> PinnedDrop for Runner<F, E> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.finished {
                // Cancelled from outside (runtime shutdown): drop the body first, then report.
                let body = this.body;
                let _ = catch_unwind(AssertUnwindSafe(move || drop_body(body)));
                this.end.ended(Err(Exit::Stopped));
            }
        }
    }
}

fn drop_body<F>(mut body: Pin<&mut Option<F>>) {
    body.set(None);
}

impl<F: Future, E: OnEnd<F::Output>> Runner<F, E> {
    pub(crate) fn new(body: F, end: E) -> Runner<F, E> {
        // One span per incarnation: everything the body traces is attributed to its tasklet.
        // Kept only when a subscriber wants it: a disabled span would cost every idle tasklet 40 bytes.
        let span = tracing::debug_span!("tasklet", id = end.shared().id().0);
        let span = (!span.is_disabled()).then(|| Box::new(span));
        Runner {
            body: Some(body),
            end,
            finished: false,
            registered: false,
            span,
        }
    }
}

impl<F: Future, E: OnEnd<F::Output>> Future for Runner<F, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if *this.finished {
            return Poll::Ready(());
        }
        let _entered = this.span.as_ref().map(|s| s.enter());
        let shared = this.end.shared();
        let result = if shared.stop.load(Ordering::Acquire) {
            Err(Exit::Stopped)
        } else {
            let Some(body) = this.body.as_mut().as_pin_mut() else {
                return Poll::Ready(());
            };
            match catch_unwind(AssertUnwindSafe(|| body.poll(cx))) {
                Ok(Poll::Ready(value)) => Ok(value),
                Ok(Poll::Pending) => {
                    // The executor gives a task the same waker for its whole life: register it once
                    // for stop requests.
                    if !*this.registered {
                        shared.waker.register(cx.waker());
                        *this.registered = true;
                    }
                    if !shared.stop.load(Ordering::Acquire) {
                        return Poll::Pending;
                    }
                    Err(Exit::Stopped)
                }
                Err(panic) => Err(Exit::Panicked(panic_message(&*panic))),
            }
        };
        *this.finished = true;
        // The body (its Cx, armed conditions and owned resources) goes before the end is reported.
        let body = this.body;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop_body(body))) {
            tracing::error!(reason = %panic_message(&*panic), "tasklet body panicked while dropped");
        }
        this.end.ended(result);
        Poll::Ready(())
    }
}
