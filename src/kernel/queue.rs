//! The pending-event set: a short sorted array, then a radix heap on event times in front of
//! which the next few events wait sorted; FIFO among equal times.
//!
//! Same-time events pop in the order they were scheduled, which is what makes a run a pure
//! function of its inputs: no tie is ever broken by memory layout or hashing.
//!
//! A radix heap works because a discrete-event simulation is monotone: nothing is scheduled
//! before the current time. Its digits are hexadecimal: bucket `16 p + v` holds the events
//! whose time differs from a base time (a past minimum) first in hex digit `p`, where it is
//! `v`. Scheduling is O(1); when the events at hand run out, the lowest non-empty bucket is
//! emptied into lower buckets around its minimum, and as an event only ever moves down a
//! digit, each moves at most 16 times: O(1) amortised per event, whatever the number pending
//! (a binary heap pays O(log n) cache-missing swaps). Hex rather than binary digits: a bucket
//! splits sixteen ways, so an event moves about a quarter as often; hot-tenant-full's retries,
//! thousands pending over seconds, had moved some eight times each (binary digits: next_bucket
//! 16 % of its instructions; hex digits 11 %, the whole run 5.5 % fewer).
//!
//! The events at hand are the *front*: every pending event whose bucket is below `front_b`,
//! sorted by time. A lowest bucket of at most [`SORT_MAX`] events is sorted into the front
//! whole instead of being split again and again (each split moves every event of the bucket,
//! and a bucket of a few dozen took four or five splits to empty: a fifth of the instructions
//! of a busy run); a larger one is split as above, its minimum's events becoming the front.
//! Events scheduled into the front's range are inserted in order, from the back, where the
//! latest are; should that range fill up past [`FRONT_MAX`], its events go back to buckets.
//!
//! Ties stay FIFO because equal times always share a bucket (the bucket depends only on the
//! time and the base), buckets are appended to and emptied in order, and an insertion into the
//! front or the short array goes after every event due at or before it.
//!
//! A queue starts as a short sorted array, as long as at most [`SMALL_MAX`] events are
//! pending: with a dozen events (the reference M/M/c model's 2 arrivals and 10 services) an
//! insertion scan from the back is cheaper than the heap's reorganising. The first time more
//! are pending it becomes the radix heap for good, events moved over in order.

use crate::time::SimTime;

/// Bits per digit of the radix: a bucket per (digit position, digit value).
const DIGIT_BITS: u32 = 4;

/// Digit values per position.
const RADIX: usize = 1 << DIGIT_BITS;

/// Buckets: one per (position, value) of the 16 hexadecimal digits of a `u64` time. Bucket 0
/// (position 0, value 0) holds the events at the base time itself; the other buckets of value 0
/// stay empty (an event differing from the base in a digit has a larger value there).
const BUCKETS: usize = RADIX * (u64::BITS / DIGIT_BITS) as usize;

/// Words of the occupancy bitmap.
const OCCUPIED_WORDS: usize = BUCKETS / 64;

/// The most events the queue holds as a sorted array; one more and it becomes a radix heap.
/// In the `bench queue` hold model (exponential delays) the array took 12 / 15 / 20 / 23 /
/// 27 ns per hold at 8 / 16 / 32 / 48 / 64 pending, the radix heap 17-22 / 22-25 / 23 / 26 /
/// 24: level at about 56. 32 leaves a margin and bounds an insertion at 31 moves.
pub const SMALL_MAX: usize = 32;

/// The largest lowest bucket sorted into the front whole rather than split.
const SORT_MAX: usize = 16;

/// The most events the front holds (ties at one time apart) before they go back to buckets,
/// which bounds an insertion into it.
const FRONT_MAX: usize = 48;

/// A priority queue of events ordered by `(time, seq)`, where `seq` is the insertion order.
pub struct EventQueue<E> {
    /// Until `radix`: every pending event, the next one last (sorted by time, latest first;
    /// among equal times the first scheduled is nearest the end).
    small: Vec<(u64, E)>,
    /// Whether the events are in the radix heap (`front` and `buckets`) rather than in
    /// `small`. Set once, when more than [`SMALL_MAX`] are pending, and never cleared.
    radix: bool,
    /// The pending events of buckets below `front_b`, sorted by time (earliest first, FIFO
    /// among equal times); those before `front_head` are consumed. (A vector and a cursor
    /// rather than a `VecDeque`: indexing it stays one add.)
    front: Vec<(u64, E)>,
    front_head: usize,
    /// Events in buckets below it are in `front`, the others in `buckets`.
    front_b: usize,
    /// Buckets 1.. (index 0 unused: such events are in `front`).
    buckets: Vec<Vec<(u64, E)>>,
    /// Bit `b % 64` of word `b / 64` set iff bucket `b` is non-empty.
    occupied: [u64; OCCUPIED_WORDS],
    /// The time the buckets are relative to: at or before every pending event.
    base: u64,
    /// The current time: every pending event is at or after it.
    last: u64,
    len: usize,
    scheduled: u64,
    /// Events a refill found near, handed to the warming callback together.
    near: Vec<E>,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            small: Vec::new(),
            radix: false,
            front: Vec::new(),
            front_head: 0,
            front_b: 1,
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: [0; OCCUPIED_WORDS],
            base: 0,
            last: 0,
            len: 0,
            scheduled: 0,
            near: Vec::new(),
        }
    }
}

/// The bucket of an event at `time` around `base` (at or before it): 0 if they are equal, else
/// `RADIX * position + value` of the highest hexadecimal digit in which they differ. Buckets
/// are thus in time order: every event of a bucket is before every event of a higher one.
#[inline]
fn bucket_of(time: u64, base: u64) -> usize {
    let differ = time ^ base;
    if differ == 0 {
        return 0;
    }
    let position = (u64::BITS - 1 - differ.leading_zeros()) / DIGIT_BITS;
    let value = (time >> (position * DIGIT_BITS)) as usize & (RADIX - 1);
    position as usize * RADIX + value
}

impl<E: Copy> EventQueue<E> {
    #[inline(always)]
    fn mark_occupied(&mut self, bucket: usize) {
        self.occupied[bucket / 64] |= 1 << (bucket % 64);
    }

    #[inline(always)]
    fn clear_occupied(&mut self, bucket: usize) {
        self.occupied[bucket / 64] &= !(1 << (bucket % 64));
    }

    /// The lowest non-empty bucket, if any.
    #[inline(always)]
    fn lowest_occupied(&self) -> Option<usize> {
        let word = self.occupied.iter().position(|&w| w != 0)?;
        Some(word * 64 + self.occupied[word].trailing_zeros() as usize)
    }

    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Schedules `event` at `at`. Events at the same time run in the order they were
    /// scheduled. An event scheduled before the current time (a model bug) runs at the
    /// current time, after everything already scheduled for it.
    // Always inline: left to itself the compiler calls it out of line once the sorted array's
    // loop is in it, which cost 1-2 % of instructions in both the reference and the
    // 1,000-tenant model (cachegrind); inlined, the radix path is as before plus one branch.
    #[inline(always)]
    pub fn schedule(&mut self, at: SimTime, event: E) {
        let time = at.as_nanos().max(self.last);
        self.scheduled += 1;
        self.len += 1;
        if !self.radix {
            if self.len <= SMALL_MAX {
                self.insert_small(time, event);
                return;
            }
            self.become_radix();
        }
        self.insert_radix(time, event);
    }

    /// Inserts into the sorted array: after (nearer the front than) every event due after
    /// `time`, before every event due at or before it, so equal times stay FIFO. Always inlined
    /// (with `schedule`): out of line it was a call per scheduled event.
    #[inline(always)]
    fn insert_small(&mut self, time: u64, event: E) {
        // Insertion sort's inner loop from the back, where the next events are: shift each
        // event due at or before `time` up one place (a near event, such as the next arrival,
        // moves few; no `memmove` call).
        self.small.push((time, event));
        let pending = &mut self.small[..];
        let mut at = pending.len() - 1;
        while at > 0 && pending[at - 1].0 <= time {
            pending[at] = pending[at - 1];
            at -= 1;
        }
        pending[at] = (time, event);
    }

    /// Moves the pending events, in order, from the sorted array into the radix heap. Kept out
    /// of line: it runs once per queue, if ever.
    #[cold]
    #[inline(never)]
    fn become_radix(&mut self) {
        self.radix = true;
        self.front.clear();
        self.front_head = 0;
        self.front_b = 1;
        self.base = self.last;
        let pending = std::mem::take(&mut self.small);
        for &(time, event) in pending.iter().rev() {
            self.insert_radix(time, event);
        }
    }

    // Always inlined (into `schedule`): out of line it was a call per scheduled event, its
    // entry and exit 50M instructions of hot-tenant-full's 2,350M.
    #[inline(always)]
    fn insert_radix(&mut self, time: u64, event: E) {
        let b = bucket_of(time, self.base);
        if b < self.front_b {
            self.insert_front(time, event);
        } else {
            self.buckets[b].push((time, event));
            self.mark_occupied(b);
        }
    }

    /// Inserts into the front after every event due at or before `time` (FIFO ties): from the
    /// back, where an event due after all the others (the usual case) stays. Out of line, so
    /// that the bucket path inlined into every `schedule` stays short.
    #[inline(never)]
    fn insert_front(&mut self, time: u64, event: E) {
        if self.front.len() == self.front.capacity() && self.front_head * 2 >= self.front.len() {
            // Reuse the consumed half rather than grow: a front that never runs dry (events
            // scheduled into it as fast as they are popped) would grow without end.
            self.front.drain(..self.front_head);
            self.front_head = 0;
        }
        self.front.push((time, event));
        let head = self.front_head;
        let front = &mut self.front[..];
        let mut at = front.len() - 1;
        while at > head && front[at - 1].0 > time {
            front[at] = front[at - 1];
            at -= 1;
        }
        front[at] = (time, event);
        if self.front.len() - head > FRONT_MAX && self.front_b > 1 {
            self.spill_front();
        }
    }

    /// Moves the front's events back to buckets around the current time, its events at that
    /// time alone staying: the front's range had filled up, and each insertion into it shifts
    /// more. Kept out of line: rare.
    #[cold]
    #[inline(never)]
    fn spill_front(&mut self) {
        let head = self.front_head;
        let base = self.last;
        // The current time is the base or a time popped from the front, so it shares every bit
        // from `front_b - 1` up with the base (as the front's events do): the higher buckets
        // stay as they are around it.
        self.base = base;
        self.front_b = 1;
        let mut keep = head;
        for i in head..self.front.len() {
            let (time, event) = self.front[i];
            let b = bucket_of(time, base);
            if b == 0 {
                self.front[keep] = (time, event);
                keep += 1;
            } else {
                self.buckets[b].push((time, event));
                self.mark_occupied(b);
            }
        }
        self.front.truncate(keep);
    }

    /// Makes the earliest pending events the front, if it is empty.
    #[inline]
    fn refill(&mut self) {
        if self.front_head >= self.front.len() && !self.take_single() {
            self.next_bucket::<false>(0);
        }
    }

    /// The common case with few events pending, kept inline: the lowest non-empty bucket holds
    /// one event, which becomes the front without the out-of-line `next_bucket` (and, as a
    /// lone event, is never named to the warming callback). `false` if the bucket holds more,
    /// or none: then `next_bucket` must run.
    #[inline]
    fn take_single(&mut self) -> bool {
        let Some(b) = self.lowest_occupied() else {
            return false;
        };
        match self.buckets.get_mut(b) {
            Some(items) if items.len() == 1 => {
                let (time, event) = items[0];
                items.clear();
                self.clear_occupied(b);
                self.base = time;
                self.last = time;
                self.front_b = b;
                self.front.clear();
                self.front.push((time, event));
                self.front_head = 0;
                true
            }
            _ => false,
        }
    }

    /// [`EventQueue::peek_time`], also calling `near(events)` with the pending events that,
    /// as the queue reorganises, come within `2^near_bits` ns of the new current time, with
    /// `near_bits` rounded down to a multiple of 4, whole hex digits (each event once, when it
    /// first does; one scheduled that near to begin with is never named; while the queue is a
    /// short sorted array, nothing is). They come in batches, tens of events ahead of their
    /// turn: a model can read (never change) what they will touch, so that their cache misses
    /// overlap one another instead of each stalling its own event. The order is unchanged.
    #[inline]
    pub fn peek_time_warming(
        &mut self,
        near_bits: u32,
        mut near: impl FnMut(&[E]),
    ) -> Option<SimTime> {
        if !self.radix {
            return self.peek_small();
        }
        if self.front_head >= self.front.len() && !self.take_single() {
            self.next_bucket::<true>(near_bits);
            if !self.near.is_empty() {
                near(&self.near);
                self.near.clear();
            }
        }
        self.peek_time()
    }

    /// Makes the lowest non-empty bucket the front: sorted whole if it holds at most
    /// [`SORT_MAX`] events, else emptied into lower buckets around its minimum, whose events
    /// become the front. When `WARMING` (a constant, so plain pops pay nothing for it) it
    /// collects in `near` the events that move from a bucket of digit `near_bits / 4` or above
    /// to below it; a bucket above that digit is then always split, so that the front stays
    /// near. Kept out of line: `refill` is inlined into every pop and peek, and usually finds
    /// work to hand.
    #[inline(never)]
    fn next_bucket<const WARMING: bool>(&mut self, near_bits: u32) {
        self.front.clear();
        self.front_head = 0;
        let Some(b) = self.lowest_occupied() else {
            return;
        };
        self.clear_occupied(b);
        // Events in buckets below `near` are due within 2^near_bits (rounded down to whole
        // digits) of the base.
        let near = near_bits as usize / DIGIT_BITS as usize * RADIX;
        let items = &mut self.buckets[b];
        // A bucket of one never gets here: `take_single` makes it the front inline first.
        if items.len() <= SORT_MAX && (!WARMING || b < near + RADIX) {
            // Every event of the bucket is below it around the new base, its minimum: the front
            // is the bucket, sorted (insertion from the back keeps ties in bucket order, which
            // is FIFO).
            self.front_b = b;
            if WARMING && b >= near {
                self.near.extend(items.iter().map(|&(_, event)| event));
            }
            // The bucket's buffer becomes the front and the front's (emptied above) the
            // bucket's: no copy.
            std::mem::swap(&mut self.front, items);
            let front = &mut self.front[..];
            for next in 1..front.len() {
                let (time, event) = front[next];
                let mut at = next;
                while at > 0 && front[at - 1].0 > time {
                    front[at] = front[at - 1];
                    at -= 1;
                }
                front[at] = (time, event);
            }
            // The clock moves to the next event already (what an event scheduled before it is
            // clamped to), so no event can be scheduled before the base.
            self.base = self.front[0].0;
            self.last = self.base;
            return;
        }
        let base = items.iter().map(|(t, _)| *t).min().unwrap_or(self.base);
        self.base = base;
        self.last = base;
        self.front_b = 1;
        // Every event of bucket `b` moves to a lower bucket, so the two halves never alias.
        let (lower, upper) = self.buckets.split_at_mut(b);
        let items = &mut upper[0];
        for &(time, event) in items.iter() {
            let nb = bucket_of(time, base);
            if nb == 0 {
                self.front.push((time, event));
            } else {
                lower[nb].push((time, event));
                // `mark_occupied` inline: `lower` holds `self.buckets` borrowed.
                self.occupied[nb / 64] |= 1 << (nb % 64);
            }
            if WARMING && nb < near && b >= near {
                self.near.push(event);
            }
        }
        items.clear();
    }

    /// Removes and returns the earliest event.
    #[inline]
    pub fn pop(&mut self) -> Option<(SimTime, E)> {
        if self.radix {
            self.refill();
        }
        self.pop_peeked()
    }

    /// Removes and returns the earliest event without refilling: after
    /// [`EventQueue::peek_time`] (or `peek_time_warming`) returned `Some(t)`, and with nothing
    /// scheduled since, that is exactly what [`EventQueue::pop`] would return. As a radix heap
    /// it returns `None` once the front is used up, even if later events wait (as a sorted
    /// array it returns the earliest), so call it only right after a peek.
    #[inline]
    pub fn pop_peeked(&mut self) -> Option<(SimTime, E)> {
        if !self.radix {
            let (time, event) = self.small.pop()?;
            self.len -= 1;
            self.last = time;
            return Some((SimTime::from_nanos(time), event));
        }
        let (time, event) = *self.front.get(self.front_head)?;
        self.front_head += 1;
        self.len -= 1;
        self.last = time;
        Some((SimTime::from_nanos(time), event))
    }

    /// The time of the earliest event, if any. Always inlined (into the run loop): out of line
    /// it was a call per event.
    #[inline(always)]
    pub fn peek_time(&mut self) -> Option<SimTime> {
        if !self.radix {
            return self.peek_small();
        }
        self.refill();
        self.front
            .get(self.front_head)
            .map(|&(time, _)| SimTime::from_nanos(time))
    }

    #[inline]
    fn peek_small(&self) -> Option<SimTime> {
        self.small
            .last()
            .map(|&(time, _)| SimTime::from_nanos(time))
    }

    /// Whether the events have moved to the radix heap.
    #[cfg(test)]
    fn is_radix(&self) -> bool {
        self.radix
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of events ever scheduled.
    pub fn scheduled(&self) -> u64 {
        self.scheduled
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    use super::*;

    /// The definition a queue is checked against: the pending `(time, id)` pairs, ids given
    /// in scheduling order, so sorting the pairs gives (time, insertion) order.
    #[derive(Default)]
    struct Definition {
        pending: Vec<(u64, u64)>,
        next_id: u64,
        now: u64,
    }

    impl Definition {
        /// Schedules the next id at `delay` after the current time, in `queue` and here.
        fn schedule(&mut self, queue: &mut EventQueue<u64>, delay: u64) {
            let at = self.now.saturating_add(delay);
            queue.schedule(SimTime::from_nanos(at), self.next_id);
            self.pending.push((at, self.next_id));
            self.next_id += 1;
        }

        /// Checks `got`, what the queue popped, against the earliest pending pair, and moves
        /// the current time to it.
        fn check_pop(&mut self, got: Option<(SimTime, u64)>) -> Result<(), TestCaseError> {
            self.pending.sort_unstable();
            let expected = (!self.pending.is_empty()).then(|| self.pending.remove(0));
            let got = got.map(|(t, e)| (t.as_nanos(), e));
            prop_assert_eq!(got, expected);
            if let Some((t, _)) = got {
                self.now = t;
            }
            Ok(())
        }

        /// Pops everything left, checking each, and that the queue is then empty.
        fn check_drain(mut self, queue: &mut EventQueue<u64>) -> Result<(), TestCaseError> {
            while !self.pending.is_empty() {
                self.check_pop(queue.pop())?;
            }
            prop_assert!(queue.pop().is_none());
            Ok(())
        }
    }

    proptest! {
        /// Against the definition: events come out sorted by (time, insertion order), with
        /// scheduling interleaved with popping (by `pop`, or by `peek_time` then
        /// `pop_peeked`) and never before the current time.
        #[test]
        fn pops_in_time_then_insertion_order(ops in proptest::collection::vec((0u8..4, 0u64..1_000), 1..400)) {
            let mut queue = EventQueue::new();
            let mut definition = Definition::default();
            for (op, delay) in ops {
                if op < 2 {
                    // Delays cluster on a few values to make same-time ties common.
                    definition.schedule(&mut queue, delay % 7 * 100);
                } else {
                    let got = if op == 2 {
                        queue.pop()
                    } else {
                        let peeked = queue.peek_time();
                        let popped = queue.pop_peeked();
                        prop_assert_eq!(peeked, popped.map(|(t, _)| t));
                        popped
                    };
                    definition.check_pop(got)?;
                }
                prop_assert_eq!(queue.len(), definition.pending.len());
            }
            definition.check_drain(&mut queue)?;
        }
    }

    proptest! {
        /// Across the switch from sorted array to radix heap: filled to either side of
        /// [`SMALL_MAX`] with ties common, then popped and scheduled at random, it pops in
        /// (time, insertion) order, before, during and after the switch.
        #[test]
        fn pops_in_order_across_the_switch_to_a_radix_heap(
            prefill in 0usize..2 * SMALL_MAX,
            ops in proptest::collection::vec((0u8..3, 0u64..1_000), 0..200),
        ) {
            let mut queue = EventQueue::new();
            let mut definition = Definition::default();
            for i in 0..prefill as u64 {
                definition.schedule(&mut queue, i * 7919 % 5 * 100);
            }
            prop_assert_eq!(queue.is_radix(), prefill > SMALL_MAX);
            for (op, delay) in ops {
                if op == 0 {
                    definition.schedule(&mut queue, delay % 5 * 100);
                } else {
                    definition.check_pop(queue.pop())?;
                }
                prop_assert_eq!(queue.len(), definition.pending.len());
            }
            definition.check_drain(&mut queue)?;
        }
    }

    proptest! {
        /// The same over the whole range of times: delays from nanoseconds to centuries, so
        /// events land in every bucket and move down through them.
        #[test]
        fn pops_in_order_across_every_bucket(ops in proptest::collection::vec((0u8..3, 0u32..64, 0u64..4), 1..400)) {
            let mut queue = EventQueue::new();
            let mut definition = Definition::default();
            for (op, shift, tie) in ops {
                if op < 2 {
                    // A few distinct delays per magnitude keep ties common at every level.
                    definition.schedule(&mut queue, (tie << shift) >> 1);
                } else {
                    definition.check_pop(queue.pop())?;
                }
            }
            definition.check_drain(&mut queue)?;
        }
    }

    proptest! {
        /// Through the front's spills: a few events far apart make the front's range wide (a
        /// lone event, or a small bucket sorted whole), then bursts of near events, ties
        /// common, fill it past [`FRONT_MAX`] between pops.
        #[test]
        fn pops_in_order_when_the_front_fills_up(
            spread in 1u32..40,
            ops in proptest::collection::vec((0u8..8, 0u64..1_000), 1..600),
        ) {
            let mut queue = EventQueue::new();
            let mut definition = Definition::default();
            for i in 0..=SMALL_MAX as u64 {
                definition.schedule(&mut queue, (i + 1) << spread);
            }
            for (op, delay) in ops {
                if op < 7 {
                    definition.schedule(&mut queue, delay % 50 * 3);
                } else {
                    definition.check_pop(queue.pop())?;
                }
                prop_assert_eq!(queue.len(), definition.pending.len());
            }
            definition.check_drain(&mut queue)?;
        }
    }

    proptest! {
        /// The warming look-ahead changes no order, and passes only pending events due within
        /// `2^near_bits` ns (rounded down to whole hex digits) of the time the queue moves to.
        #[test]
        fn warming_keeps_the_order_and_names_only_near_events(
            ops in proptest::collection::vec((0u8..3, 0u32..40, 0u64..4), 1..400),
            near_bits in 1u32..30,
        ) {
            let (mut plain, mut warming) = (EventQueue::new(), EventQueue::new());
            let mut times: Vec<u64> = Vec::new(); // by id
            let mut now = 0u64;
            let mut warmed: Vec<bool> = Vec::new();
            for (op, shift, tie) in ops.into_iter().chain(std::iter::repeat_n((2, 0, 0), 400)) {
                if op < 2 {
                    let at = now.saturating_add((tie << shift) >> 1);
                    plain.schedule(SimTime::from_nanos(at), times.len());
                    warming.schedule(SimTime::from_nanos(at), times.len());
                    times.push(at);
                    warmed.push(false);
                    continue;
                }
                let mut near: Vec<usize> = Vec::new();
                let next = warming.peek_time_warming(near_bits, |ids| near.extend_from_slice(ids));
                prop_assert_eq!(next, plain.peek_time());
                for id in near {
                    let due_in = times[id] - next.expect("a warmed event is pending").as_nanos();
                    prop_assert!(due_in < 1 << (near_bits / 4 * 4), "event due in {} ns warmed", due_in);
                    prop_assert!(!warmed[id], "event {} warmed twice", id);
                    warmed[id] = true;
                }
                let got = warming.pop();
                prop_assert_eq!(got, plain.pop());
                if let Some((t, _)) = got {
                    now = t.as_nanos();
                }
            }
        }
    }

    #[test]
    fn warming_names_most_events_some_pops_ahead_of_their_turn() {
        let mut queue = EventQueue::new();
        for i in 0..1_000u64 {
            queue.schedule(SimTime::from_nanos(5_000 + i * 10), i);
        }
        let mut first_warmed_at_pop = vec![None; 1_000];
        let mut pops = 0;
        while queue
            .peek_time_warming(8, |events| {
                for &e in events {
                    first_warmed_at_pop[e as usize].get_or_insert(pops);
                }
            })
            .is_some()
        {
            let (_, e) = queue.pop().unwrap();
            assert_eq!(e, pops, "warming changed the order");
            pops += 1;
        }
        // Events are 10 ns apart and warmed when due within 256 ns: most get warmed while
        // at least two others are still ahead of them.
        let early = (0..1_000)
            .filter(|&e| first_warmed_at_pop[e as usize].is_some_and(|p: u64| p + 2 <= e))
            .count();
        assert!(early >= 500, "only {early} of 1000 events warmed ahead");
    }

    proptest! {
        /// Buckets are in time order around any base: a later event is never in a lower
        /// bucket, and only the base itself is in bucket 0.
        #[test]
        fn buckets_are_in_time_order(
            base in any::<u64>(),
            a in any::<u64>(),
            b in any::<u64>(),
            shift in 0u32..64,
        ) {
            // Offsets of every magnitude after the base (the shift spreads them over all the
            // digit positions), in order.
            let (early, late) = ((a.min(b)) >> shift, (a.max(b)) >> shift);
            let (early, late) = (base.saturating_add(early), base.saturating_add(late));
            prop_assert!(bucket_of(early, base) <= bucket_of(late, base));
            prop_assert_eq!(bucket_of(early, base) == 0, early == base);
            prop_assert!(bucket_of(late, base) < BUCKETS);
        }
    }

    #[test]
    fn turns_into_a_radix_heap_past_the_limit_keeping_ties_in_order() {
        let mut queue = EventQueue::new();
        // Three times, interleaved, so every time has ties scheduled far apart.
        for i in 0..=SMALL_MAX {
            assert!(!queue.is_radix(), "radix with only {i} pending");
            queue.schedule(SimTime::from_nanos(100 * (3 - i as u64 % 3)), i);
        }
        assert!(queue.is_radix());
        let popped: Vec<(u64, usize)> = std::iter::from_fn(|| queue.pop())
            .map(|(t, e)| (t.as_nanos(), e))
            .collect();
        let mut expected: Vec<(u64, usize)> = (0..=SMALL_MAX)
            .map(|i| (100 * (3 - i as u64 % 3), i))
            .collect();
        expected.sort_unstable();
        assert_eq!(popped, expected);
    }

    #[test]
    fn an_event_in_the_past_runs_now_after_the_others() {
        // As a sorted array (3 pending), then as a radix heap (more than SMALL_MAX).
        for later in [0, SMALL_MAX as u64] {
            let mut queue = EventQueue::new();
            for i in 0..later {
                queue.schedule(SimTime::from_nanos(1_000 + i), 'z');
            }
            queue.schedule(SimTime::from_nanos(100), 'a');
            queue.schedule(SimTime::from_nanos(100), 'b');
            assert_eq!(queue.is_radix(), later > 0);
            assert_eq!(queue.pop(), Some((SimTime::from_nanos(100), 'a')));
            queue.schedule(SimTime::from_nanos(5), 'c');
            assert_eq!(queue.pop(), Some((SimTime::from_nanos(100), 'b')));
            assert_eq!(queue.pop(), Some((SimTime::from_nanos(100), 'c')));
            assert_eq!(queue.len(), later as usize);
        }
    }
}
