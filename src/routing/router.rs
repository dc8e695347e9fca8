//! Routers: one member of a group per message, by a policy.

use std::fmt;
use std::sync::Arc;

use super::group::Group;
use crate::tasklet::Addr;

/// How a [`Router`] picks a member.
///
/// # Examples
///
/// ```
/// use tasklets::{Group, Policy, Router};
///
/// let router = Router::new(&Group::new("pool"), Policy::LeastLoaded);
/// assert_eq!(router.policy(), Policy::LeastLoaded);
/// assert_eq!(Router::hash(&Group::new("pool")).policy(), Policy::Hash);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// Members in turn.
    RoundRobin,
    /// A uniformly random member.
    Random,
    /// Rendezvous (highest-random-weight) hashing of the message's [`key`](crate::Message::key): the
    /// same key goes to the same member while membership is unchanged, and a change moves only the keys
    /// of the members that came or went. A message without a key is routed by its name.
    Hash,
    /// The member with the fewest entries in its mailbox (ties: the first).
    LeastLoaded,
}

/// A destination that sends each message to one member of a group.
///
/// # Examples
///
/// ```
/// use tasklets::{Group, Message, Router, WaitForMessages};
///
/// tasklets::run(|cx| async move {
///     let pool = Group::new("workers");
///     let workers: Vec<_> = (0..2)
///         .map(|_| {
///             let pool = pool.clone();
///             cx.spawn(move |cx| async move {
///                 cx.join(&pool);
///                 let jobs = WaitForMessages::new().accept("job");
///                 let a = cx.receive(&jobs).await;
///                 let b = cx.receive(&jobs).await;
///                 (*a.get::<u32>().unwrap(), *b.get::<u32>().unwrap())
///             })
///         })
///         .collect();
///     while cx.runtime().members(&pool).len() < 2 {
///         tasklets::future::yield_now().await;
///     }
///     let router = Router::round_robin(&pool);
///     for i in 0..4_u32 {
///         cx.send(Message::new("job").to(&router).value(i)).await.unwrap();
///     }
///     let mut got: Vec<(u32, u32)> = Vec::new();
///     for w in workers {
///         got.push(w.join().await.unwrap());
///     }
///     assert_eq!(got, vec![(0, 2), (1, 3)]);
/// }).unwrap();
/// ```
#[derive(Clone)]
pub struct Router(Arc<Inner>);

struct Inner {
    group: Group,
    policy: Policy,
}

impl Router {
    /// A router over `group` with `policy`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Policy, Router};
    ///
    /// let pool = Group::new("pool");
    /// let router = Router::new(&pool, Policy::RoundRobin);
    /// assert_eq!((router.group(), router.policy()), (&pool, Policy::RoundRobin));
    /// ```
    pub fn new(group: &Group, policy: Policy) -> Router {
        Router(Arc::new(Inner {
            group: group.clone(),
            policy,
        }))
    }
    /// Round-robin over `group`. The position lives with the group, not with the `Router` value:
    /// every round-robin router over one group takes turns from the same position, so a router made
    /// per message goes round as well as one kept.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Message, Router, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let members: Vec<_> = (0..3)
    ///     .map(|_| rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("quit")).await; }))
    ///     .collect();
    /// for m in &members {
    ///     rt.handle().join_group(&pool, &m.addr());
    /// }
    /// for i in 0..6 {
    ///     // A new router each time: the turn is the group's.
    ///     rt.handle().try_send(Message::new("job").to(Router::round_robin(&pool)).value(i)).unwrap();
    /// }
    /// assert_eq!(members.iter().map(|m| m.addr().len()).collect::<Vec<_>>(), [2, 2, 2]);
    /// ```
    ///
    /// ```
    /// use tasklets::{Group, Message, Router, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let members: Vec<_> = (0..2)
    ///     .map(|_| rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("quit")).await; }))
    ///     .collect();
    /// for m in &members {
    ///     assert!(rt.handle().join_group(&pool, &m.addr()));
    /// }
    /// let queued = || members.iter().map(|m| m.addr().len()).collect::<Vec<_>>();
    /// let router = Router::round_robin(&pool);
    /// for i in 0..4 {
    ///     rt.handle().try_send(Message::new("job").to(&router).value(i)).unwrap();
    /// }
    /// assert_eq!(queued(), [2, 2]);
    /// ```
    pub fn round_robin(group: &Group) -> Router {
        Router::new(group, Policy::RoundRobin)
    }
    /// A random member of `group`.
    ///
    /// Sending through a router whose group has no members fails with `NoRecipient`
    /// ([`SendError::NoRecipient`](crate::SendError::NoRecipient),
    /// [`TrySendError::NoRecipient`](crate::TrySendError::NoRecipient)), whatever the policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Message, Router, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let members: Vec<_> = (0..2)
    ///     .map(|_| rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("quit")).await; }))
    ///     .collect();
    /// for m in &members {
    ///     assert!(rt.handle().join_group(&pool, &m.addr()));
    /// }
    /// let queued = || members.iter().map(|m| m.addr().len()).collect::<Vec<_>>();
    /// let router = Router::random(&pool);
    /// for i in 0..10 {
    ///     rt.handle().try_send(Message::new("job").to(&router).value(i)).unwrap();
    /// }
    /// assert_eq!(queued().iter().sum::<usize>(), 10); // each message to one member
    ///
    /// let nobody = Router::random(&Group::new("empty"));
    /// let err = rt.handle().try_send(Message::new("job").to(&nobody)).unwrap_err();
    /// assert!(matches!(err, tasklets::TrySendError::NoRecipient(_)));
    /// ```
    pub fn random(group: &Group) -> Router {
        Router::new(group, Policy::Random)
    }
    /// Consistent hashing of the message key over `group`.
    ///
    /// # Examples
    ///
    /// Messages with the same [`key`](crate::Message::key) go to the same member:
    ///
    /// ```
    /// use tasklets::{Group, Message, Router, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let members: Vec<_> = (0..2)
    ///     .map(|_| rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("quit")).await; }))
    ///     .collect();
    /// for m in &members {
    ///     assert!(rt.handle().join_group(&pool, &m.addr()));
    /// }
    /// let queued = || members.iter().map(|m| m.addr().len()).collect::<Vec<_>>();
    /// let router = Router::hash(&pool);
    /// for _ in 0..3 {
    ///     rt.handle().try_send(Message::new("count").to(&router).key("apple")).unwrap();
    /// }
    /// let mut q = queued();
    /// q.sort();
    /// assert_eq!(q, [0, 3]);
    /// ```
    pub fn hash(group: &Group) -> Router {
        Router::new(group, Policy::Hash)
    }
    /// The least-loaded member of `group`.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Message, Router, Runtime, WaitForMessages};
    ///
    /// let rt = Runtime::new();
    /// let pool = Group::new("pool");
    /// let members: Vec<_> = (0..2)
    ///     .map(|_| rt.spawn(|cx| async move { cx.receive(&WaitForMessages::new().accept("quit")).await; }))
    ///     .collect();
    /// for m in &members {
    ///     assert!(rt.handle().join_group(&pool, &m.addr()));
    /// }
    /// let queued = || members.iter().map(|m| m.addr().len()).collect::<Vec<_>>();
    /// members[0].addr().try_send(Message::new("backlog")).unwrap();
    /// members[0].addr().try_send(Message::new("backlog")).unwrap();
    /// let router = Router::least_loaded(&pool);
    /// rt.handle().try_send(Message::new("job").to(&router)).unwrap();
    /// rt.handle().try_send(Message::new("job").to(&router)).unwrap();
    /// assert_eq!(queued(), [2, 2]); // both jobs went to the idle member
    /// ```
    pub fn least_loaded(group: &Group) -> Router {
        Router::new(group, Policy::LeastLoaded)
    }

    /// The group routed over.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Router};
    ///
    /// assert_eq!(Router::round_robin(&Group::new("pool")).group().name(), "pool");
    /// ```
    pub fn group(&self) -> &Group {
        &self.0.group
    }

    /// The policy.
    ///
    /// # Examples
    ///
    /// ```
    /// use tasklets::{Group, Policy, Router};
    ///
    /// assert_eq!(Router::random(&Group::new("pool")).policy(), Policy::Random);
    /// assert_eq!(Router::least_loaded(&Group::new("pool")).policy(), Policy::LeastLoaded);
    /// ```
    pub fn policy(&self) -> Policy {
        self.0.policy
    }

    /// Picks a member for a message with routing key `key`; `turn` is the group's round-robin
    /// position (the position lives with the group, not with this value, so a router made per
    /// message still goes round).
    pub(crate) fn pick<'a>(&self, members: &'a [Addr], key: u64, turn: usize) -> Option<&'a Addr> {
        if members.is_empty() {
            return None;
        }
        match self.0.policy {
            Policy::RoundRobin => members.get(turn % members.len()),
            Policy::Random => members.get(fastrand::usize(..members.len())),
            Policy::Hash => members
                .iter()
                .max_by_key(|m| mix(key ^ mix(m.id().as_u64()))),
            Policy::LeastLoaded => members.iter().min_by_key(|m| m.len()),
        }
    }
}

/// A 64-bit finalizer (splitmix64): spreads ids and keys for rendezvous hashing.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("group", &self.0.group)
            .field("policy", &self.0.policy)
            .finish()
    }
}
