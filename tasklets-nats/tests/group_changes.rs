//! Group membership across nodes: a tasklet on node `a` watching a group gets `group-changed` notices
//! when members join and leave on node `b`, and when `b` goes away its members leave.

mod support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::nats_server;
use tasklets::{Group, GroupChange, Handle, Message, Runtime, WaitForMessages, GROUP_CHANGED};
use tasklets_nats::{connect, NodeOptions};

const WAIT: Duration = Duration::from_secs(10);

/// The next value on `rx`, driving `rt` meanwhile (its tasklets run while it is driven); fails the
/// test, naming `what`, after [`WAIT`].
fn next<T>(rt: &Runtime, rx: &async_channel::Receiver<T>, what: &str) -> T {
    rt.block_on(futures_lite::future::or(
        async { Some(rx.recv().await.unwrap()) },
        async {
            async_io::Timer::after(WAIT).await;
            None
        },
    ))
    .unwrap_or_else(|| panic!("no {what} within {WAIT:?}"))
}

fn opts(node: &str, ns: &str) -> NodeOptions {
    NodeOptions::new(node)
        .namespace(ns)
        .heartbeat(Duration::from_millis(50))
        .down_after(Duration::from_millis(300))
}

/// Node `b` on its own thread, with `lobby` exported; ends (node closed) when its runtime quits.
fn node_b(url: &str, ns: &str, lobby: &Group) -> (Handle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let (url, ns, lobby) = (url.to_owned(), ns.to_owned(), lobby.clone());
    let thread = std::thread::spawn(move || {
        let rt = Runtime::new();
        let node = connect(&rt.handle(), &url, opts("b", &ns)).unwrap();
        rt.block_on(node.export_group(&lobby)).unwrap();
        rt.block_on(node.export_group(&lobby)).unwrap(); // twice: no second subscription
        tx.send(rt.handle()).unwrap();
        rt.run();
        drop(node);
    });
    (rx.recv().unwrap(), thread)
}

#[test]
fn watchers_see_members_of_other_nodes_join_and_leave_and_leave_when_their_node_goes() {
    let Some(nats) = nats_server("group_changes") else {
        return;
    };
    let ns = format!("members{}", std::process::id());
    let lobby = Group::new("lobby");
    let rt = Runtime::new();
    let node = std::sync::Arc::new(connect(&rt.handle(), &nats.url, opts("a", &ns)).unwrap());
    let (notices, seen) = async_channel::unbounded::<GroupChange>();
    let (watching, watching_rx) = async_channel::unbounded();
    let g = lobby.clone();
    rt.spawn(move |cx| async move {
        cx.watch_group(&g);
        watching.try_send(()).unwrap();
        let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
        loop {
            let mut notice = cx.receive(&changes).await;
            if notices
                .try_send(notice.take::<GroupChange>().unwrap())
                .is_err()
            {
                return;
            }
        }
    });
    next(&rt, &watching_rx, "watch");

    let (b, b_thread) = node_b(&nats.url, &ns, &lobby);
    assert!(rt.block_on(node.wait_for_peer("b", WAIT)));

    // A member joins on b: a join notice on a, about a stand-in that reaches the member.
    let (said, said_rx) = async_channel::unbounded();
    let g = lobby.clone();
    b.spawn(move |cx| async move {
        cx.join(&g);
        let hello = cx.receive(&WaitForMessages::new().accept("hello")).await;
        said.try_send(hello.name().to_string()).unwrap();
        cx.leave(&g);
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    let joined = next(&rt, &seen, "join");
    assert_eq!((&joined.group, joined.joined), (&lobby, true));
    let stand_in = node
        .remote_member(&lobby, joined.tasklet)
        .expect("a stand-in");
    assert_eq!(stand_in.id(), joined.tasklet);
    assert_eq!(
        node.remote_members(&lobby),
        [("b".to_string(), stand_in.clone())]
    );
    rt.handle()
        .try_send(Message::new("hello").to(&stand_in))
        .unwrap();
    assert_eq!(next(&rt, &said_rx, "hello"), "hello");

    // It leaves on b: a leave notice on a, same id.
    let left = next(&rt, &seen, "leave");
    assert_eq!(
        left,
        GroupChange {
            group: lobby.clone(),
            tasklet: joined.tasklet,
            joined: false
        }
    );
    assert!(node.remote_members(&lobby).is_empty());

    // Another joins and stays; then b goes away: its members leave, within the detection bound.
    let g = lobby.clone();
    b.spawn(move |cx| async move {
        cx.join(&g);
        cx.receive(&WaitForMessages::new().accept("never")).await;
    });
    let stays = next(&rt, &seen, "second join");
    assert!(stays.joined);
    b.quit();
    b_thread.join().unwrap();
    let closed = Instant::now();
    let gone = next(&rt, &seen, "leave of a gone node's member");
    let detected = closed.elapsed();
    assert_eq!(
        gone,
        GroupChange {
            group: lobby.clone(),
            tasklet: stays.tasklet,
            joined: false
        }
    );
    let bound = opts("a", &ns).detection_bound();
    println!("b's member left on a {detected:?} after b closed (bound {bound:?})");
    assert!(detected < bound + Duration::from_secs(2), "{detected:?}");
    // Local members are never mistaken for remote ones: nothing else arrived.
    assert!(seen.try_recv().is_err());
}
