//! The crate's one source of locks: a [`Mutex`] and an [`RwLock`] that do not report poisoning.
//!
//! Every lock in the crate comes from here, so there is one place that says how locks behave and one
//! seam where a model-checking build swaps the primitives: with the `shuttle` feature, these are
//! [shuttle](https://docs.rs/shuttle)'s locks, and `cargo test --features shuttle --lib shuttle` runs
//! the mailbox under thousands of random thread schedules (that build is for those tests only).
//!
//! # Why poisoning is ignored
//!
//! No user code runs while one of our locks is held — destructors of message values, join
//! callbacks and signal handlers all run after the guard is dropped — and our own code does not panic
//! under a lock. A poisoned lock can therefore only come from a bug that already panicked elsewhere;
//! the data behind it is still consistent, and a tasklet runtime must keep serving the other tasklets.

use std::sync::PoisonError;

#[cfg(feature = "shuttle")]
use shuttle::sync as imp;
#[cfg(not(feature = "shuttle"))]
use std::sync as imp;

pub(crate) use imp::MutexGuard;
pub(crate) use std::sync::{RwLockReadGuard, RwLockWriteGuard};

/// A mutual-exclusion lock whose [`lock`](Mutex::lock) never fails (see the module doc).
#[derive(Default, Debug)]
pub(crate) struct Mutex<T: ?Sized>(imp::Mutex<T>);

impl<T> Mutex<T> {
    /// A new unlocked mutex holding `value`.
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex(imp::Mutex::new(value))
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks, waiting while another thread holds the lock.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value, through exclusive access: no locking.
    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reader-writer lock whose [`read`](RwLock::read) and [`write`](RwLock::write) never fail.
///
/// It guards process-wide tables (the name interner) that outlive any one model-checked schedule, so
/// the `shuttle` build does not swap it.
#[derive(Default)]
pub(crate) struct RwLock<T: ?Sized>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    /// A new unlocked lock holding `value`.
    pub(crate) const fn new(value: T) -> RwLock<T> {
        RwLock(std::sync::RwLock::new(value))
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Shared access, waiting while a writer holds the lock.
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Exclusive access, waiting while anyone holds the lock.
    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }
}
