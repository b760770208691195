//! A slab: stable `u32` handles into a vector, with freed slots reused.
//!
//! Requests and jobs live here so events can refer to them by a 4-byte handle. Reuse is
//! LIFO, which is deterministic; stale handles are caught by the attempt ids the model keeps.

/// Values addressed by `u32` handles.
pub struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    /// An empty slab.
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores `value` and returns its handle.
    #[inline(always)]
    pub fn insert(&mut self, value: T) -> u32 {
        match self.free.pop() {
            Some(handle) => {
                // A free slot holds `None`: replacing it needs no drop (so no drop glue of `T`
                // on this path, which keeps it small enough to inline).
                let old = self.slots[handle as usize].replace(value);
                debug_assert!(old.is_none(), "a free slab slot was occupied");
                std::mem::forget(old);
                handle
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// The value behind `handle`, if it is live.
    #[inline]
    pub fn get(&self, handle: u32) -> Option<&T> {
        self.slots.get(handle as usize).and_then(Option::as_ref)
    }

    /// The value behind `handle`, if it is live.
    #[inline]
    pub fn get_mut(&mut self, handle: u32) -> Option<&mut T> {
        self.slots.get_mut(handle as usize).and_then(Option::as_mut)
    }

    /// Removes and returns the value behind `handle`.
    #[inline]
    pub fn remove(&mut self, handle: u32) -> Option<T> {
        let value = self.slots.get_mut(handle as usize)?.take();
        if value.is_some() {
            self.free.push(handle);
        }
        value
    }

    /// Drops the value behind `handle` in place (no move out); `false` if it was not live.
    #[inline]
    pub fn free(&mut self, handle: u32) -> bool {
        match self.slots.get_mut(handle as usize) {
            Some(slot @ Some(_)) => {
                *slot = None;
                self.free.push(handle);
                true
            }
            _ => false,
        }
    }

    /// Live values in handle order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.as_ref().map(|v| (i as u32, v)))
    }
}
