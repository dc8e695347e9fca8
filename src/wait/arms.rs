//! The helper tasks of one condition, one per tasklet that has it armed.
//!
//! A condition object can be armed by several waits at once (a shared source watched by two tasklets).
//! Each arming runs a helper task that pushes into that arming's sink; disarming cancels exactly that
//! task, and dropping the condition cancels them all and drops their pending events.

use std::sync::Arc;

use crate::sync::Mutex;

use async_executor::Task;

use super::{Disarm, EventSink};

struct Armed {
    arming: u64,
    sink: EventSink,
    _task: Task<()>,
}

#[derive(Default)]
struct List {
    next: u64,
    armed: Vec<Armed>,
}

/// The armings of one condition. Cheap to clone (shared).
#[derive(Clone, Default)]
pub(crate) struct Arms(Arc<Mutex<List>>);

impl Arms {
    /// Records an arming and its helper task; the returned guard cancels the task.
    pub(crate) fn add(&self, sink: EventSink, task: Task<()>) -> Disarm {
        let arming = {
            let mut list = self.0.lock();
            list.next += 1;
            let arming = list.next;
            list.armed.push(Armed {
                arming,
                sink,
                _task: task,
            });
            arming
        };
        let arms = self.clone();
        Disarm::new(move || {
            let gone = {
                let mut list = arms.0.lock();
                let at = list.armed.iter().position(|a| a.arming == arming);
                at.map(|i| list.armed.swap_remove(i))
            };
            drop(gone); // cancels the task, outside the lock
        })
    }

    /// Whether any wait has the condition armed.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.lock().armed.is_empty()
    }

    /// The condition is dropped: cancel every helper and drop the pending events.
    pub(crate) fn clear(&self) {
        let gone = std::mem::take(&mut self.0.lock().armed);
        for armed in gone {
            armed.sink.clear();
        }
    }
}
