//! The live record of a supervision tree and the snapshots taken of it.

use std::fmt;
use std::sync::Arc;

use crate::sync::Mutex;

use crate::name::Name;
use crate::tasklet::{Addr, Shared, State, TaskletId};

use super::{ChildSpec, Strategy};

/// The supervisor's live record of its children.
#[derive(Debug)]
pub(crate) struct TreeInfo {
    strategy: Strategy,
    pub(super) children: Vec<KidInfo>,
}

impl TreeInfo {
    pub(super) fn new(strategy: Strategy) -> TreeInfo {
        TreeInfo {
            strategy,
            children: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub(super) struct KidInfo {
    name: String,
    addr: Addr,
    pub(super) restarts: u32,
    nested: Option<Arc<Mutex<TreeInfo>>>,
}

/// A printable picture of a supervision tree.
///
/// # Examples
///
/// Its `Display` form lists each child with its id, state, restarts and mailbox, nested children
/// indented:
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Message, Runtime};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("worker", |_cx| async {})),
/// );
/// let worker = sup.child("worker").unwrap();
/// worker.try_send(Message::new("job")).unwrap();
/// worker.try_send(Message::new("job")).unwrap();
/// // Nothing has run yet: the child is still `Running` (runnable).
/// assert_eq!(
///     sup.snapshot().to_string(),
///     format!("supervisor (OneForOne)\n  - worker ({}) Running, restarts 0, mailbox 2 [job: 2]\n", worker.id())
/// );
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TreeSnapshot {
    /// The supervisor's strategy.
    pub strategy: Strategy,
    /// Its children, in start order.
    pub children: Vec<ChildSnapshot>,
}

/// One child in a [`TreeSnapshot`].
///
/// # Examples
///
/// ```
/// use tasklets::supervisor::{ChildSpec, Strategy, Supervisor};
/// use tasklets::{Runtime, State};
///
/// let rt = Runtime::new();
/// let sup = rt.spawn_supervisor(
///     Supervisor::new(Strategy::OneForOne).child(ChildSpec::new("worker", |_cx| async {})),
/// );
/// let snap = sup.snapshot();
/// let child = &snap.children[0];
/// assert_eq!(child.name, "worker");
/// assert_eq!(child.id, sup.child("worker").unwrap().id());
/// assert_eq!((child.state, child.restarts, child.mailbox_len), (State::Running, 0, 0));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChildSnapshot {
    /// The child's name.
    pub name: String,
    /// Its tasklet id (stable across restarts).
    pub id: TaskletId,
    /// What it is doing.
    pub state: State,
    /// How many times it has been restarted.
    pub restarts: u32,
    /// Entries in its mailbox.
    pub mailbox_len: usize,
    /// Queued messages per name.
    pub messages: Vec<(Name, usize)>,
    /// Its own children, if it is a supervisor.
    pub children: Option<TreeSnapshot>,
}

pub(super) fn snapshot(tree: &Arc<Mutex<TreeInfo>>) -> TreeSnapshot {
    let t = tree.lock();
    TreeSnapshot {
        strategy: t.strategy,
        children: t
            .children
            .iter()
            .map(|k| ChildSnapshot {
                name: k.name.clone(),
                id: k.addr.id(),
                state: k.addr.state(),
                restarts: k.restarts,
                mailbox_len: k.addr.len(),
                messages: k.addr.message_counts(),
                children: k.nested.as_ref().map(snapshot),
            })
            .collect(),
    }
}

impl fmt::Display for TreeSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn write(t: &TreeSnapshot, depth: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for c in &t.children {
                write!(
                    f,
                    "{:indent$}- {} ({}) {:?}, restarts {}, mailbox {}",
                    "",
                    c.name,
                    c.id,
                    c.state,
                    c.restarts,
                    c.mailbox_len,
                    indent = depth * 2
                )?;
                for (name, n) in &c.messages {
                    write!(f, " [{name}: {n}]")?;
                }
                writeln!(f)?;
                if let Some(sub) = &c.children {
                    write(sub, depth + 1, f)?;
                }
            }
            Ok(())
        }
        writeln!(f, "supervisor ({:?})", self.strategy)?;
        write(self, 1, f)
    }
}

pub(super) fn fill_tree(tree: &Arc<Mutex<TreeInfo>>, specs: &[ChildSpec], cells: &[Arc<Shared>]) {
    let mut t = tree.lock();
    t.children = specs
        .iter()
        .zip(cells)
        .map(|(spec, cell)| KidInfo {
            name: spec.name.clone(),
            addr: Addr(Arc::clone(cell)),
            restarts: 0,
            nested: spec.nested.clone(),
        })
        .collect();
}
