//! The registry: names for tasklets, released when they finish, kept across supervised restarts.

use crate::sync::Mutex;
use std::collections::HashMap;

use crate::error::RegistryError;
use crate::tasklet::Addr;

/// The runtime's name → address table.
#[derive(Default)]
pub(crate) struct Registry {
    names: Mutex<HashMap<String, Addr>>,
    /// The [`Outbound`](super::Outbound) hooks of addresses that stand for other processes (kept
    /// here so the runtime's shared state needs no field of its own for them).
    pub(crate) outbound: super::outbound::Outbounds,
}

impl Registry {
    pub(crate) fn register(&self, name: &str, addr: &Addr) -> Result<(), RegistryError> {
        let mut names = self.names.lock();
        if let Some(holder) = names.get(name) {
            if holder == addr {
                return Ok(());
            }
            if !holder.is_finished() {
                return Err(RegistryError::Taken {
                    name: name.to_owned(),
                    holder: holder.id(),
                });
            }
        }
        // Recorded on the tasklet first, so that its end (which takes that list) cannot miss the name.
        if !addr.0.add_name(name) {
            return Err(RegistryError::Finished);
        }
        names.insert(name.to_owned(), addr.clone());
        Ok(())
    }

    pub(crate) fn unregister(&self, name: &str) -> Option<Addr> {
        let addr = self.names.lock().remove(name)?;
        addr.0.remove_name(name);
        Some(addr)
    }

    /// Removes `name` if tasklet `id` still holds it (at its end).
    pub(crate) fn release(&self, name: &str, id: crate::TaskletId) {
        let mut names = self.names.lock();
        if names.get(name).map(Addr::id) == Some(id) {
            names.remove(name);
        }
    }

    pub(crate) fn whereis(&self, name: &str) -> Option<Addr> {
        self.names.lock().get(name).cloned()
    }

    pub(crate) fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.names.lock().keys().cloned().collect();
        v.sort();
        v
    }
}
