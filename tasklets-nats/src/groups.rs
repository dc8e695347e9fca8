//! Groups across nodes: the membership of exported groups published to the other nodes, and the
//! stand-ins of their members here.

use std::sync::Arc;

use tasklets::{Group, GroupChange, StaticName, WaitForMessages, GROUP_CHANGED};

use crate::inner::Inner;
use crate::wire::H_FULL;

/// Internal message the membership tasklet gets from `export_group`: watch this group.
pub(crate) static WATCH: StaticName = StaticName::new("tasklets-nats/watch");

/// What `export_group` asks the membership tasklet.
pub(crate) struct Watch {
    pub(crate) group: Group,
    pub(crate) done: async_channel::Sender<()>,
}

/// Spawns the tasklet that watches the exported groups and publishes their changes.
pub(crate) fn spawn_watcher(inner: &Arc<Inner>) -> tasklets::Addr {
    let watcher = Arc::clone(inner);
    inner
        .handle
        .spawn(move |cx| async move {
            let wait = WaitForMessages::new().accept(&GROUP_CHANGED).accept(&WATCH);
            loop {
                let mut msg = cx.receive(&wait).await;
                if let Some(w) = msg.take::<Watch>() {
                    cx.watch_group(&w.group);
                    let _ = w.done.try_send(());
                } else if let Some(change) = msg.take::<GroupChange>() {
                    watcher.local_change(&change);
                }
            }
        })
        .addr()
}

impl Inner {
    /// Publishes the current local members of `group`, as the whole list ([`H_FULL`]): the other
    /// nodes take the ones they do not know as joins and drop the ones it does not list.
    ///
    /// The list is read and queued for publication under the state lock, as
    /// [`local_change`](Self::local_change) queues a change: so a change that the list does not
    /// show is queued after it, never before (a join queued first would be undone by the list).
    pub(crate) fn publish_members(&self, group: &Group) {
        let mut s = self.lock();
        let mut changes = Vec::new();
        for a in self.handle.members(group).iter() {
            if s.stand_ins.contains_key(&a.id()) {
                continue;
            }
            // Addressable from other nodes at `<ns>.addr.<me>.<id>`.
            changes.push((a.id().as_u64(), true));
            s.local.entry(a.id().as_u64()).or_insert_with(|| a.clone());
        }
        // Queued (never awaited) with the lock held: see above.
        self.publish_membership(group, &changes, true);
        drop(s);
    }

    pub(crate) fn publish_changes(&self, group: &Group, changes: &[(u64, bool)]) {
        self.publish_membership(group, changes, false);
    }

    /// Publishes `changes` of `group`'s members here, the whole list when `full`.
    fn publish_membership(&self, group: &Group, changes: &[(u64, bool)], full: bool) {
        // Version, node and incarnation: the other nodes take a change only from the node it
        // speaks for, as its current incarnation.
        let mut h = self.own_headers();
        if full {
            h.insert(H_FULL, "1");
        }
        let payload = serde_json::to_vec(changes).unwrap_or_default();
        // The node is in the subject, so that NATS permissions can let a node publish only its own.
        let subject = format!(
            "{}.members.{}.{}",
            self.opts.namespace,
            self.opts.node,
            group.name()
        );
        self.publish(subject, h, payload.into());
    }

    /// A membership change of an exported group seen by the membership tasklet: published unless
    /// it is about a stand-in for a remote member.
    pub(crate) fn local_change(&self, change: &GroupChange) {
        {
            let mut s = self.lock();
            if s.stand_ins.contains_key(&change.tasklet) {
                return;
            }
            if change.joined {
                let addr = self
                    .handle
                    .members(&change.group)
                    .into_iter()
                    .find(|a| a.id() == change.tasklet);
                match addr {
                    Some(a) => {
                        s.local.entry(a.id().as_u64()).or_insert(a);
                    }
                    None => return, // it left already: its leave follows
                }
            }
            // Queued under the lock, in order with the whole lists (see `publish_members`).
            self.publish_changes(&change.group, &[(change.tasklet.as_u64(), change.joined)]);
        }
    }

    /// Membership changes of `group` published by `node`: stand-ins made or ended, and the local
    /// watchers told.
    pub(crate) fn remote_changes(
        self: &Arc<Self>,
        group: &str,
        node: &str,
        changes: &[(u64, bool)],
    ) {
        for &(id, joined) in changes {
            let key = (group.to_owned(), node.to_owned(), id);
            let tasklet = if joined {
                if self.lock().remote_members.contains_key(&key) {
                    continue;
                }
                let Some(addr) = self.stand_in(node, id) else {
                    tracing::warn!(
                        node,
                        group,
                        "too many stand-ins for one node: a member ignored"
                    );
                    continue;
                };
                let mut s = self.lock();
                s.stand_ins.insert(addr.id(), addr.clone());
                s.remote_members.insert(key, addr.clone());
                addr.id()
            } else {
                match self.lock().remote_members.remove(&key) {
                    Some(a) => a.id(),
                    None => continue,
                }
            };
            self.handle.announce_group_change(GroupChange {
                group: Group::new(group),
                tasklet,
                joined,
            });
            self.link.changed.notify(usize::MAX);
        }
    }
}
