//! A long-lived service keeps its fds, tables and memory flat.
//!
//! One server tasklet, registered by name, handles 20 000 requests. Each comes from a short-lived
//! client tasklet that monitors the server, watches a group, calls the server by name and, every 20th
//! request, runs an owned `true` command and waits for it. Afterwards the open fds, the live tasklets,
//! the registry, the group table, the server's ledger and the dead letters are back where they started
//! (± a small constant). The RSS before and after is printed (`cargo test --test soak -- --nocapture`).

mod support;

use async_process::Command;
use std::time::Duration;

use tasklets::{Group, Message, Registrations, Runtime, WaitForMessages, WaitForProcess};

const REQUESTS: usize = 20_000;
const BATCH: usize = 100;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_long_lived_server_keeps_fds_tables_and_dead_letters_flat_over_20_000_requests() {
    support::within_thread("soak", Duration::from_secs(120), soak);
}

fn soak() {
    let rt = Runtime::new();
    let h = rt.handle();
    let server = rt.spawn(|cx| async move {
        cx.register("server").unwrap();
        let requests = WaitForMessages::new().accept(["req", "quit"]);
        let mut served = 0_u64;
        loop {
            let req = cx.receive(&requests).await;
            if req.name() == "quit" {
                return served;
            }
            served += 1;
            let n = *req.get::<u64>().unwrap();
            cx.send(req.reply("resp").value(n + 1)).await.unwrap();
        }
    });
    let server_addr = server.addr();

    // One warm-up round, so lazily made tables and the process driver exist before the baseline.
    let room = Group::new("soak-room");
    let round = |first: usize, count: usize| {
        let clients: Vec<_> = (first..first + count)
            .map(|i| {
                let server = server_addr.clone();
                let room = room.clone();
                h.spawn(move |cx| async move {
                    cx.monitor(&server);
                    cx.watch_group(&room);
                    let reply = cx
                        .call("server", Message::new("req").value(i as u64), None)
                        .await
                        .expect("the server answers");
                    assert_eq!(reply.get::<u64>(), Some(&(i as u64 + 1)));
                    if i % 20 == 0 {
                        let run: WaitForProcess = cx
                            .command(Command::new("true").stdin(std::process::Stdio::null()))
                            .expect("spawn `true`");
                        let exit = cx.wait(&run).await;
                        assert!(exit.get::<tasklets::ProcessExit>().unwrap().success());
                    }
                })
            })
            .collect();
        rt.block_on(async {
            for c in clients {
                c.join().await.expect("a client failed");
            }
        });
    };
    round(0, BATCH);

    let fds = open_fds();
    let live = h.live();
    let names = h.registered().len();
    let groups = h.groups().len();
    let dead = h.dead_letter_count();
    let rss = rss_kib();

    let mut done = BATCH;
    while done < REQUESTS {
        round(done, BATCH);
        done += BATCH;
    }

    let fds_after = open_fds();
    let rss_after = rss_kib();
    println!(
        "soak: {REQUESTS} requests; fds {fds} -> {fds_after}; live {live} -> {}; names {names} -> {}; \
         groups {groups} -> {}; dead letters {dead} -> {}; RSS {rss} KiB -> {rss_after} KiB",
        h.live(),
        h.registered().len(),
        h.groups().len(),
        h.dead_letter_count(),
    );
    assert!(
        fds_after <= fds + 4,
        "open fds grew from {fds} to {fds_after}"
    );
    assert_eq!(h.live(), live, "live tasklets");
    assert_eq!(h.registered().len(), names, "registered names");
    assert!(
        h.groups().len() <= groups,
        "groups left behind: {:?}",
        h.groups()
    );
    assert_eq!(h.dead_letter_count(), dead, "dead letters appeared");
    let r: Registrations = server_addr.registrations();
    assert_eq!(
        (
            r.monitored_by,
            r.watched_by,
            r.names,
            r.groups,
            r.group_watches
        ),
        (0, 0, 1, 0, 0),
        "the server's ledger kept records of finished clients: {r:?}"
    );
    server_addr.try_send(Message::new("quit")).unwrap();
    assert_eq!(rt.block_on(server.join()), Ok(REQUESTS as u64));
    rt.shutdown();
}
