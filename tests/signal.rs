//! `WaitForSignal` with real OS signals sent to this test process, and with in-process emitters.
//!
//! The tests share one process, so the OS-signal tests hold `SERIAL` and each uses its own signal.
//! None sends `SIGINT` or `SIGTERM`: once taken over they would be harmless, but a test that ran before
//! the take-over would kill the whole test binary.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use async_io::Timer;
use futures_lite::FutureExt;
use rustix::process::{getpid, kill_process, Signal as RawSignal};
use tasklets::{OsSignal, Runtime, Signal, SignalClosed, WaitForMessages, WaitForSignal};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Drives `rt` until `fut` completes; a hang becomes a failure that says what hung.
fn within<T>(rt: &Runtime, what: &str, fut: impl Future<Output = T>) -> T {
    rt.block_on(fut.or(async {
        Timer::after(Duration::from_secs(30)).await;
        panic!("{what}: not done after 30 s")
    }))
}

fn send_self(sig: RawSignal) {
    kill_process(getpid(), sig).expect("kill(getpid())");
}

/// Two tasklets wait for SIGUSR1; one delivery reaches both.
#[test]
fn every_waiting_tasklet_gets_the_signal() {
    let _serial = serial();
    let rt = Runtime::new();
    let (armed_tx, armed_rx) = async_channel::unbounded::<()>();
    let waiter = |armed: async_channel::Sender<()>| {
        move |cx: tasklets::Cx| async move {
            let usr1 = WaitForSignal::os(OsSignal::Usr1);
            assert!(cx.try_wait(&usr1).is_none());
            armed.send(()).await.unwrap();
            let ev = cx.wait(&usr1).await;
            *ev.get::<OsSignal>().unwrap()
        }
    };
    let a = rt.spawn(waiter(armed_tx.clone()));
    let b = rt.spawn(waiter(armed_tx));
    within(&rt, "arming", async {
        armed_rx.recv().await.unwrap();
        armed_rx.recv().await.unwrap();
    });
    send_self(RawSignal::USR1);
    assert_eq!(within(&rt, "a", a.join()), Ok(OsSignal::Usr1));
    assert_eq!(within(&rt, "b", b.join()), Ok(OsSignal::Usr1));
}

/// Three SIGUSR2 deliveries while the tasklet is busy (armed, but not waiting) are three events.
///
/// The kernel merges a standard signal sent again before the first was handled, so each `kill` here
/// waits until an observer tasklet, on another runtime and thread, has seen the previous delivery:
/// what is counted is deliveries that reached the process, each exactly once per waiter.
#[test]
fn signals_while_busy_are_each_an_event() {
    let _serial = serial();
    // The observer: its own runtime on its own thread, reporting each delivery.
    let (seen_tx, seen_rx) = std::sync::mpsc::channel::<()>();
    let (observer_armed_tx, observer_armed_rx) = std::sync::mpsc::channel::<()>();
    let observer = std::thread::spawn(move || {
        tasklets::run(move |cx| async move {
            let usr2 = WaitForSignal::os(OsSignal::Usr2);
            assert!(cx.try_wait(&usr2).is_none());
            observer_armed_tx.send(()).unwrap();
            for _ in 0..3 {
                cx.wait(&usr2).await;
                seen_tx.send(()).unwrap();
            }
        })
    });
    observer_armed_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap();

    let rt = Runtime::new();
    let busy = rt.spawn(move |cx| async move {
        let usr2 = WaitForSignal::os(OsSignal::Usr2);
        assert!(cx.try_wait(&usr2).is_none()); // armed; from here on busy, not waiting
        let me = cx.me();
        for _ in 0..3 {
            send_self(RawSignal::USR2);
            // Blocking this thread on purpose: the tasklet is busy.
            seen_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        }
        // The observer saw three deliveries; each is an event here too (the hub fans out on its
        // own thread, so they may still be on their way).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while me.len() < 3 {
            assert!(std::time::Instant::now() < deadline, "signals lost");
            Timer::after(Duration::from_millis(2)).await;
        }
        let mut n = 0;
        while let Some(ev) = cx.try_wait(&usr2) {
            assert_eq!(ev.get::<OsSignal>(), Some(&OsSignal::Usr2));
            n += 1;
        }
        n
    });
    assert_eq!(within(&rt, "busy", busy.join()), Ok(3));
    observer.join().unwrap().unwrap();
}

/// A disarmed condition gets nothing, while an armed one in the same tasklet gets the delivery (and
/// the signal, taken over, does not kill the process).
#[test]
fn disarmed_condition_gets_nothing() {
    let _serial = serial();
    let rt = Runtime::new();
    let t = rt.spawn(|cx| async move {
        let winch = WaitForSignal::os(OsSignal::Winch);
        let witness = WaitForSignal::os(OsSignal::Winch);
        assert!(cx.try_wait((&winch, &witness)).is_none());
        assert!(winch.is_armed() && witness.is_armed());
        send_self(RawSignal::WINCH);
        // This wait leaves `winch` out: disarmed, whatever it had queued dropped.
        let ev = cx.wait(&witness).await;
        assert_eq!(ev.get::<OsSignal>(), Some(&OsSignal::Winch));
        assert!(!winch.is_armed());
        // The delivery was fanned out once, when `winch` was not armed: armed again, nothing.
        assert!(cx.try_wait(&winch).is_none());
    });
    within(&rt, "disarmed", t.join()).unwrap();
}

#[test]
fn uncatchable_signals_are_refused() {
    assert!(WaitForSignal::try_os(OsSignal::Kill).is_err());
    assert!(WaitForSignal::try_os(OsSignal::Stop).is_err());
}

/// kiwi's `TestWaitForSignal.testSignal`: a tasklet waits on an emitter; one emit, and it finishes with
/// the value.
#[test]
fn emitter_delivers_its_value() {
    let rt = Runtime::new();
    let emitter = Signal::<&'static str>::new();
    let on = WaitForSignal::on(&emitter);
    let t = rt.spawn(move |cx| async move {
        let mut ev = cx.wait(&on).await;
        assert!(ev.is(&on));
        ev.take::<&'static str>().unwrap()
    });
    within(&rt, "arming", async {
        while emitter.waiters() == 0 {
            futures_lite::future::yield_now().await;
        }
    });
    assert_eq!(emitter.emit("return-val"), 1);
    assert_eq!(within(&rt, "join", t.join()), Ok("return-val"));
    assert_eq!(emitter.waiters(), 0, "disarmed at the tasklet's end");
}

/// Every armed waiter gets every emission, each its own event, even while busy.
#[test]
fn emitter_fans_out_and_counts() {
    let rt = Runtime::new();
    let emitter = Signal::<u32>::new();
    let mut tasklets = Vec::new();
    for _ in 0..3 {
        let on = WaitForSignal::on(&emitter);
        tasklets.push(rt.spawn(move |cx| async move {
            let mut sum = 0;
            for _ in 0..3 {
                sum += cx.wait(&on).await.take::<u32>().unwrap();
            }
            sum
        }));
    }
    within(&rt, "arming", async {
        while emitter.waiters() < 3 {
            futures_lite::future::yield_now().await;
        }
    });
    for v in [1, 10, 100] {
        assert_eq!(emitter.emit(v), 3);
    }
    for t in tasklets {
        assert_eq!(within(&rt, "join", t.join()), Ok(111));
    }
}

/// An emitter dropped while waited on: the waiter gets `SignalClosed` (after what was emitted before),
/// and so does a later wait.
#[test]
fn dropped_emitter_gives_closed() {
    let rt = Runtime::new();
    let emitter = Signal::<u32>::new();
    let copy = emitter.clone();
    let on = WaitForSignal::on(&emitter);
    let t = rt.spawn(move |cx| async move {
        let mut ev = cx.wait(&on).await;
        assert_eq!(ev.take::<u32>(), Some(5));
        let ev = cx.wait(&on).await;
        assert_eq!(ev.get::<SignalClosed>(), Some(&SignalClosed));
        assert_eq!(ev.get::<u32>(), None);
        let nothing = WaitForMessages::new().accept("nothing");
        assert!(cx.try_wait(&nothing).is_none()); // disarm
        let ev = cx.wait(&on).await; // armed again on a closed emitter
        ev.get::<SignalClosed>().is_some()
    });
    within(&rt, "arming", async {
        while emitter.waiters() == 0 {
            futures_lite::future::yield_now().await;
        }
    });
    drop(emitter);
    assert_eq!(copy.emit(5), 1, "a clone keeps the emitter open");
    drop(copy);
    assert_eq!(within(&rt, "closed", t.join()), Ok(true));
}
