//! Groups (topics): named sets of tasklets; a send to a group delivers one copy to each member.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::sync::Mutex;

use crate::message::Message;
use crate::name::StaticName;
use crate::tasklet::{Addr, TaskletId};

/// The name of the message a group watcher receives when membership changes; its value is a
/// [`GroupChange`].
///
/// # Examples
///
/// ```
/// use tasklets::{Group, GroupChange, WaitForMessages, GROUP_CHANGED};
///
/// tasklets::run(|cx| async move {
///     let room = Group::new("room");
///     cx.watch_group(&room);
///     assert!(cx.join(&room));
///     assert!(cx.leave(&room));
///     let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
///     let mut joined = cx.receive(&changes).await;
///     assert_eq!(joined.name(), GROUP_CHANGED.get());
///     assert!(joined.take::<GroupChange>().unwrap().joined);
///     let mut left = cx.receive(&changes).await;
///     assert!(!left.take::<GroupChange>().unwrap().joined);
/// })
/// .unwrap();
/// ```
pub static GROUP_CHANGED: StaticName = StaticName::new("group-changed");

/// A group's name, used as a destination: `Message::new("line").to(&Group::new("lobby"))`.
///
/// # Examples
///
/// ```
/// use tasklets::{Group, Message, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     let room = Group::new("lobby");
///     let members: Vec<_> = (0..3)
///         .map(|_| {
///             let room = room.clone();
///             cx.spawn(move |cx| async move {
///                 cx.join(&room);
///                 let msg = cx.receive(&WaitForMessages::new().accept("hello")).await;
///                 msg.get::<String>().unwrap().clone()
///             })
///         })
///         .collect();
///     while cx.runtime().members(&room).len() < 3 {
///         tasklets::future::yield_now().await;
///     }
///     cx.send(Message::new("hello").to(&room).value(String::from("hi all"))).await.unwrap();
///     for m in members {
///         assert_eq!(m.join().await.unwrap(), "hi all");
///     }
/// }).unwrap();
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Group(Arc<str>);

impl Group {
    /// The group named `name` (groups exist while they have members or watchers).
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Group;
    ///
    /// tasklets::run(|cx| async move {
    ///     let lobby = Group::new("lobby");
    ///     assert_eq!(lobby, Group::new("lobby")); // same name, same group
    ///     assert!(cx.runtime().groups().is_empty());
    ///     assert!(cx.join(&lobby));
    ///     assert_eq!(cx.runtime().groups(), [lobby.clone()]);
    ///     assert!(cx.leave(&lobby));
    ///     assert!(cx.runtime().groups().is_empty()); // no members or watchers left
    /// })
    /// .unwrap();
    /// ```
    pub fn new(name: &str) -> Group {
        Group(Arc::from(name))
    }
    /// The group's name.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::Group;
    ///
    /// let g = Group::new("metrics");
    /// assert_eq!(g.name(), "metrics");
    /// assert_eq!(g.to_string(), "metrics");
    /// ```
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Group").field(&&*self.0).finish()
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A membership change, delivered to group watchers as a [`GROUP_CHANGED`] message.
///
/// # Examples
///
/// A member that finishes leaves its groups:
///
/// ```
/// use tasklets::{Group, GroupChange, WaitForMessages, GROUP_CHANGED};
///
/// tasklets::run(|cx| async move {
///     let pool = Group::new("pool");
///     cx.watch_group(&pool);
///     let p = pool.clone();
///     let member = cx.spawn(move |cx| async move {
///         assert!(cx.join(&p));
///     });
///     let id = member.id();
///     let changes = WaitForMessages::new().accept(&GROUP_CHANGED);
///     let mut first = cx.receive(&changes).await;
///     assert_eq!(
///         first.take::<GroupChange>(),
///         Some(GroupChange { group: pool.clone(), tasklet: id, joined: true })
///     );
///     let mut second = cx.receive(&changes).await;
///     assert_eq!(
///         second.take::<GroupChange>(),
///         Some(GroupChange { group: pool, tasklet: id, joined: false })
///     );
/// })
/// .unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupChange {
    /// The group.
    pub group: Group,
    /// The tasklet that joined or left.
    pub tasklet: TaskletId,
    /// `true` when it joined, `false` when it left (or finished).
    pub joined: bool,
}

#[derive(Default)]
struct GroupState {
    members: Arc<Vec<Addr>>,
    watchers: Vec<Addr>,
    /// The round-robin position: every round-robin router over the group (and every bridge asking
    /// [`Handle::round_robin_turn`](crate::Handle::round_robin_turn)) takes the next one, so the turn goes round
    /// however many `Router` values are made.
    turn: usize,
}

/// The runtime's groups.
#[derive(Default)]
pub(crate) struct Groups {
    groups: Mutex<HashMap<Group, GroupState>>,
}

impl Groups {
    /// Adds `addr`; returns false if it was a member already or has finished.
    pub(crate) fn join(&self, group: &Group, addr: &Addr) -> bool {
        let mut groups = self.groups.lock();
        if groups.get(group).is_some_and(|s| s.members.contains(addr)) {
            return false;
        }
        // Checked before the group entry is made, so a finished tasklet leaves no empty group behind.
        if !addr.0.add_group(group) {
            return false;
        }
        let state = groups.entry(group.clone()).or_default();
        Arc::make_mut(&mut state.members).push(addr.clone());
        let watchers = state.watchers.clone();
        drop(groups);
        notify(&watchers, group, addr.id(), true);
        true
    }

    /// Removes `addr`; returns whether it was a member.
    pub(crate) fn leave(&self, group: &Group, addr: &Addr) -> bool {
        let left = self.remove(group, addr.id());
        if left {
            addr.0.remove_group(group);
        }
        left
    }

    /// Removes member `id` (also at its end); returns whether it was a member.
    pub(crate) fn remove(&self, group: &Group, id: TaskletId) -> bool {
        let mut groups = self.groups.lock();
        let Some(state) = groups.get_mut(group) else {
            return false;
        };
        let Some(at) = state.members.iter().position(|m| m.id() == id) else {
            return false;
        };
        Arc::make_mut(&mut state.members).remove(at);
        let watchers = state.watchers.clone();
        if state.members.is_empty() && state.watchers.is_empty() {
            groups.remove(group);
        }
        drop(groups);
        notify(&watchers, group, id, false);
        true
    }

    /// Adds `watcher` to the group's watchers, recorded on both sides (the group table here, the
    /// watcher's ledger there); returns false if it watched already or has finished.
    pub(crate) fn watch(&self, group: &Group, watcher: &Addr) -> bool {
        let mut groups = self.groups.lock();
        if groups
            .get(group)
            .is_some_and(|s| s.watchers.contains(watcher))
        {
            return false;
        }
        // Checked before the group entry is made, so a finished watcher leaves no empty group behind.
        if !watcher.0.add_group_watch(group) {
            return false;
        }
        groups
            .entry(group.clone())
            .or_default()
            .watchers
            .push(watcher.clone());
        true
    }

    /// Removes watcher `id` (also at its end); a group left with no members and no watchers goes.
    pub(crate) fn unwatch(&self, group: &Group, id: TaskletId) -> bool {
        let mut groups = self.groups.lock();
        let Some(state) = groups.get_mut(group) else {
            return false;
        };
        let before = state.watchers.len();
        state.watchers.retain(|w| w.id() != id);
        let removed = state.watchers.len() != before;
        if state.members.is_empty() && state.watchers.is_empty() {
            groups.remove(group);
        }
        removed
    }

    /// The members now (a shared snapshot: no copy).
    pub(crate) fn members(&self, group: &Group) -> Arc<Vec<Addr>> {
        self.groups
            .lock()
            .get(group)
            .map(|s| Arc::clone(&s.members))
            .unwrap_or_default()
    }

    /// The members now and the group's next round-robin position (advanced by one).
    pub(crate) fn members_and_turn(&self, group: &Group) -> (Arc<Vec<Addr>>, usize) {
        let mut groups = self.groups.lock();
        match groups.get_mut(group) {
            Some(s) => {
                let turn = s.turn;
                s.turn = s.turn.wrapping_add(1);
                (Arc::clone(&s.members), turn)
            }
            None => (Arc::default(), 0),
        }
    }

    pub(crate) fn names(&self) -> Vec<Group> {
        let mut v: Vec<Group> = self.groups.lock().keys().cloned().collect();
        v.sort_by(|a, b| a.name().cmp(b.name()));
        v
    }
}

impl crate::Handle {
    /// Delivers a [`GROUP_CHANGED`] notice with `change` to this runtime's watchers of
    /// `change.group`, as a join or leave here would, without changing the membership here: for a
    /// bridge to other processes whose members join and leave there (`change.tasklet` is then the id
    /// of a local stand-in for the remote member, such as a proxy). Returns how many watchers were
    /// told.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, GroupChange, WaitForMessages, GROUP_CHANGED};
    ///
    /// tasklets::run(|cx| async move {
    ///     let room = Group::new("room");
    ///     cx.watch_group(&room);
    ///     let stand_in = cx.spawn(|_cx| async {});
    ///     let change = GroupChange { group: room.clone(), tasklet: stand_in.id(), joined: true };
    ///     assert_eq!(cx.runtime().announce_group_change(change.clone()), 1);
    ///     let mut notice = cx.receive(&WaitForMessages::new().accept(&GROUP_CHANGED)).await;
    ///     assert_eq!(notice.take::<GroupChange>(), Some(change));
    ///     assert!(cx.runtime().members(&room).is_empty()); // membership here is unchanged
    /// })
    /// .unwrap();
    /// ```
    pub fn announce_group_change(&self, change: GroupChange) -> usize {
        let watchers = self.rt_shared().groups.watchers(&change.group);
        notify(&watchers, &change.group, change.tasklet, change.joined);
        watchers.len()
    }
}

impl Groups {
    /// The watchers of `group` now.
    pub(crate) fn watchers(&self, group: &Group) -> Vec<Addr> {
        self.groups
            .lock()
            .get(group)
            .map(|s| s.watchers.clone())
            .unwrap_or_default()
    }
}

fn notify(watchers: &[Addr], group: &Group, tasklet: TaskletId, joined: bool) {
    for w in watchers {
        let change = GroupChange {
            group: group.clone(),
            tasklet,
            joined,
        };
        w.send_system(Message::new(&GROUP_CHANGED).value(change));
    }
}
