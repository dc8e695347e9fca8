//! The ledger of what one tasklet owns: child processes, the tasks that forward their output.
//!
//! Each owned resource is one record with an id. A resource that completes removes its own record
//! through its [`Record`] handle, so a long-lived tasklet holds only what is still running; the
//! tasklet's end drops whatever is left, newest first (a child still running is then killed).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};

/// The records of one tasklet. Lives on the tasklet's thread, like its `Cx`.
#[derive(Default)]
pub(crate) struct Ledger {
    next: Cell<u64>,
    records: RefCell<BTreeMap<u64, Box<dyn Any>>>,
}

impl Ledger {
    /// A new, empty record. Its id is never re-used, so a stale handle cannot remove another record.
    pub(crate) fn record(self: &Rc<Self>) -> Record {
        let id = self.next.get();
        self.next.set(id + 1);
        Record {
            ledger: Rc::downgrade(self),
            id,
        }
    }

    /// How many records hold a resource.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.borrow().len()
    }

    /// The tasklet's end: drops every resource still recorded, newest first. A resource's drop may
    /// look at the ledger again (it finds its record gone).
    pub(crate) fn clear(&self) {
        let records = std::mem::take(&mut *self.records.borrow_mut());
        for (_, resource) in records.into_iter().rev() {
            drop(resource);
        }
    }
}

/// One record of a [`Ledger`], held by the resource it describes so that it can remove itself.
#[derive(Clone)]
pub(crate) struct Record {
    ledger: Weak<Ledger>,
    id: u64,
}

impl Record {
    /// Puts `resource` in the record: it is dropped at the tasklet's end unless taken first. Dropped
    /// at once if the tasklet has ended already.
    pub(crate) fn hold(&self, resource: Box<dyn Any>) {
        match self.ledger.upgrade() {
            Some(ledger) => {
                let old = ledger.records.borrow_mut().insert(self.id, resource);
                drop(old);
            }
            None => drop(resource),
        }
    }

    /// Removes the record and hands its resource back (for the caller to drop or detach, outside
    /// the ledger's borrow). `None` once the tasklet has ended or the record was taken already.
    pub(crate) fn take(&self) -> Option<Box<dyn Any>> {
        let ledger = self.ledger.upgrade()?;
        ledger.records.borrow_mut().remove(&self.id) // edition 2024: the borrow ends before `ledger`
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record").field("id", &self.id).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts its drops.
    struct Probe(Rc<RefCell<Vec<u32>>>, u32);
    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.borrow_mut().push(self.1);
        }
    }

    #[test]
    fn a_taken_record_is_gone_and_the_end_drops_the_rest_newest_first() {
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let ledger = Rc::new(Ledger::default());
        let records: Vec<Record> = (0..3).map(|_| ledger.record()).collect();
        for (i, r) in records.iter().enumerate() {
            r.hold(Box::new(Probe(Rc::clone(&dropped), i as u32)));
        }
        assert_eq!(ledger.len(), 3);
        drop(records[1].take());
        assert!(records[1].take().is_none(), "taken twice");
        assert_eq!(ledger.len(), 2);
        assert_eq!(*dropped.borrow(), [1]);
        ledger.clear();
        assert_eq!(*dropped.borrow(), [1, 2, 0]);
        assert_eq!(ledger.len(), 0);
    }

    #[test]
    fn a_record_outliving_its_ledger_drops_what_it_is_given() {
        let dropped = Rc::new(RefCell::new(Vec::new()));
        let ledger = Rc::new(Ledger::default());
        let record = ledger.record();
        drop(ledger);
        record.hold(Box::new(Probe(Rc::clone(&dropped), 7)));
        assert_eq!(*dropped.borrow(), [7]);
        assert!(record.take().is_none());
    }
}
