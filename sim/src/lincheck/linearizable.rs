//! The linearizability search: Wing & Gong's tree search with Lowe's just-in-time
//! linearization, as Porcupine runs it, over one partition at a time: one key's value, or the
//! values of keys that transactions join, changed in place with an undo log.
//!
//! The history is a doubly linked list of call and return entries in real-time order. The
//! search walks it from the head: at a call entry it tries to linearize that operation next
//! (the model must accept it in the current state); at the return entry of an operation not yet
//! linearized it has gone too far and backtracks. Operations with an unknown outcome have no
//! return entry: they may be linearized at any point after their call, or never.
//!
//! Memoisation: a (set of linearized operations, state) pair is explored at most once. The set
//! is identified by the XOR of a 128-bit key per operation (Zobrist hashing), updated in O(1)
//! per step; a memo entry is that hash mixed with the state's. No set is ever cloned or
//! rehashed, which is what keeps time and memory linear in the partition where Porcupine's
//! bitset copies grow with its square. Two distinct (set, state) pairs share a 127-bit key
//! with probability about 2^-127 each; we accept that rather than store the sets.

use super::model::{step, step_parts, Interner, Kind, Slots, Val};
use super::{Budget, Operation, PENDING};
use std::time::Instant;

/// What the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Some order of the operations explains every result.
    Linearizable,
    /// No order does.
    Violation,
    /// The budget ran out first; the reason says which limit.
    GaveUp(String),
}

/// Counts a check's work against its budget, across partitions and repeated searches.
#[derive(Debug)]
pub struct Meter {
    deadline: Option<Instant>,
    max_steps: u64,
    /// Where the current slice of steps ends (see [`Meter::slice`]); `u64::MAX` for none.
    slice_end: u64,
    /// The memo's entry limit per search.
    pub max_memo_entries: usize,
    /// The most bytes of values the interner may hold.
    value_limit: usize,
    /// The budget's value bytes, as the reason for giving up names it.
    value_budget: usize,
    /// Steps taken so far.
    pub steps: u64,
}

impl Meter {
    /// A meter for `budget`, starting now.
    pub fn new(budget: &Budget) -> Meter {
        Meter {
            deadline: budget.deadline.map(|d| Instant::now() + d),
            max_steps: budget.max_steps,
            slice_end: u64::MAX,
            max_memo_entries: budget.max_memo_entries.max(1024),
            value_limit: budget.max_value_bytes,
            value_budget: budget.max_value_bytes,
            steps: 0,
        }
    }

    /// A meter allowing `steps` more steps than this one has taken, with the same deadline.
    pub fn extended(&self, steps: u64) -> Meter {
        Meter {
            max_steps: self.steps.saturating_add(steps),
            slice_end: u64::MAX,
            ..*self
        }
    }

    /// The same meter with another deadline (shrinking's own).
    pub fn with_deadline(self, deadline: Option<Instant>) -> Meter {
        Meter { deadline, ..self }
    }

    /// A meter for one key's slice: at most `steps` more steps (and the shared limits), and
    /// values past `base` bytes up to `allowance` more (the key's own memory allowance).
    pub fn slice(&self, steps: u64, base: usize, allowance: usize) -> Meter {
        Meter {
            slice_end: self.steps.saturating_add(steps),
            value_limit: base.saturating_add(allowance),
            ..*self
        }
    }

    /// Values past `base` bytes up to `allowance` more.
    pub fn with_value_allowance(self, base: usize, allowance: usize) -> Meter {
        Meter {
            value_limit: base.saturating_add(allowance),
            ..self
        }
    }

    /// No limit on the values' bytes (each key's is set by [`Meter::slice`]).
    pub fn without_value_limit(self) -> Meter {
        Meter {
            value_limit: usize::MAX,
            ..self
        }
    }

    /// Whether this slice's steps are spent (not the budget's).
    pub fn slice_spent(&self) -> bool {
        self.steps >= self.slice_end && self.steps < self.max_steps
    }

    /// Whether the budget is spent; checked every few thousand steps because reading the
    /// clock costs more than a step.
    pub fn exhausted(&self, values: &Interner) -> Option<String> {
        if self.steps >= self.max_steps {
            return Some(format!("step budget of {} exhausted", self.max_steps));
        }
        if self.steps >= self.slice_end {
            return Some("slice spent".to_string());
        }
        if values.bytes() > self.value_limit {
            let limit = self.value_budget;
            return Some(format!("value memory budget of {limit} bytes exhausted"));
        }
        match self.deadline {
            Some(d) if Instant::now() >= d => Some("timeout reached".to_string()),
            _ => None,
        }
    }
}

/// What one search did, for the per-key statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Steps (linearization attempts and backtracks).
    pub steps: u64,
    /// Memo entries at the end (or at the largest, if the memo was cleared).
    pub memo_entries: usize,
    /// How many times the memo hit its limit and was emptied.
    pub memo_clears: u32,
}

/// The deepest linearization the search reached, for explaining a violation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Deepest {
    /// Operation indices, in linearization order.
    pub order: Vec<u32>,
    /// The operation whose return was reached right after it without fitting.
    pub blocked: Option<u32>,
}

const NIL: u32 = u32::MAX;

/// A set of 127-bit keys with linear probing; `0` marks an empty slot.
struct Memo {
    slots: Vec<u128>,
    len: usize,
    max_entries: usize,
    peak: usize,
    clears: u32,
}

impl Memo {
    fn new(max_entries: usize) -> Memo {
        Memo {
            slots: vec![0; 1024],
            len: 0,
            max_entries,
            peak: 0,
            clears: 0,
        }
    }

    /// Inserts `key`; false if it was there already.
    fn insert(&mut self, key: u128) -> bool {
        let key = key | 1;
        if self.len >= self.max_entries {
            // Full: forget everything. The search stays correct (it may redo work), and the
            // entries dropped are mostly behind the frontier, where they no longer help.
            self.slots.iter_mut().for_each(|s| *s = 0);
            self.len = 0;
            self.clears += 1;
        } else if self.len * 2 >= self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (key >> 64) as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == key {
                return false;
            }
            if slot == 0 {
                self.slots[i] = key;
                self.len += 1;
                self.peak = self.peak.max(self.len);
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        let mask = self.slots.len() - 1;
        for key in old.into_iter().filter(|&k| k != 0) {
            let mut i = (key >> 64) as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = key;
        }
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The Zobrist key of operation `op`: fixed, so runs are reproducible.
fn op_key(op: u32) -> u128 {
    let a = splitmix(u64::from(op) ^ 0x5151_0000_0000_0000);
    let b = splitmix(u64::from(op) ^ 0xA7A7_0000_0000_0000);
    (u128::from(a) << 64) | u128::from(b)
}

fn state_key(state: Val) -> u128 {
    let a = splitmix(u64::from(state) ^ 0x3C3C_0000_0000_0000);
    let b = splitmix(u64::from(state) ^ 0xC3C3_0000_0000_0000);
    (u128::from(a) << 64) | u128::from(b)
}

/// The call/return list. Entry 0 is the head sentinel; entry `e` (from 1) is an operation's
/// call (`code` even) or return (`code` odd), `code / 2` being the operation.
struct List {
    next: Vec<u32>,
    prev: Vec<u32>,
    code: Vec<u32>,
    call_entry: Vec<u32>,
    ret_entry: Vec<u32>,
}

impl List {
    fn new(ops: &[Operation]) -> List {
        let mut events: Vec<(u64, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            let i = i as u32;
            events.push((op.call, i * 2));
            if op.ret != PENDING {
                events.push((op.ret, i * 2 + 1));
            }
        }
        // Positions are distinct events of the history, so there should be no ties; should a
        // return share a position with a call all the same, the return goes first ("returned
        // before the call", as `ret < call` reads it everywhere else), then by code.
        events.sort_unstable_by_key(|&(at, code)| (at, code % 2 == 0, code));
        let n = events.len() + 1;
        let mut list = List {
            next: (1..=n as u32).collect(),
            prev: (0..n as u32).map(|e| e.wrapping_sub(1)).collect(),
            code: Vec::with_capacity(n),
            call_entry: vec![NIL; ops.len()],
            ret_entry: vec![NIL; ops.len()],
        };
        list.next[n - 1] = NIL;
        list.code.push(NIL);
        for (e, &(_, code)) in events.iter().enumerate() {
            let entry = e as u32 + 1;
            list.code.push(code);
            if code % 2 == 0 {
                list.call_entry[(code / 2) as usize] = entry;
            } else {
                list.ret_entry[(code / 2) as usize] = entry;
            }
        }
        list
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    fn lift(&mut self, op: u32) {
        self.unlink(self.call_entry[op as usize]);
        let ret = self.ret_entry[op as usize];
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes [`List::lift`]; must be called in the reverse order of the lifts.
    fn unlift(&mut self, op: u32) {
        let ret = self.ret_entry[op as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(self.call_entry[op as usize]);
    }
}

/// One linearized operation on the search stack.
struct Frame {
    op: u32,
    /// A completed read-only operation: placing it here was no choice (see [`search`]), so
    /// backtracking does not try alternatives in its place.
    forced: bool,
}

/// The model's state as the search walks it: applied forwards, undone backwards, hashed for
/// the memo.
pub trait State {
    /// Applies `o` if it fits, remembering how to undo it. An operation with an unknown
    /// outcome that would change nothing is treated as not fitting: "it never happened"
    /// explains the same histories, more cheaply.
    fn apply(&mut self, o: &Operation, values: &mut Interner) -> bool;
    /// Undoes the last operation applied.
    fn undo(&mut self);
    /// The state's 128-bit memo key.
    fn key(&self) -> u128;
}

/// One key's value, interned: a step is [`step`], the key a hash of the id.
pub struct Single {
    state: Val,
    before: Vec<Val>,
}

impl State for Single {
    #[inline]
    fn apply(&mut self, o: &Operation, values: &mut Interner) -> bool {
        let Some(after) = step(&o.kind, self.state, values) else {
            return false;
        };
        if o.ret == PENDING && after == self.state {
            return false;
        }
        self.before.push(self.state);
        self.state = after;
        true
    }

    #[inline]
    fn undo(&mut self) {
        if let Some(before) = self.before.pop() {
            self.state = before;
        }
    }

    #[inline]
    fn key(&self) -> u128 {
        state_key(self.state)
    }
}

/// The values of keys joined by transactions, one slot each, changed in place with an undo
/// log and hashed incrementally (the XOR of a key per (slot, value)): a step costs what its
/// parts touch, not the width of the partition, and explored states cost no memory.
/// (Interning a whole tuple per step made a thousand joined keys exhaust the value budget
/// in seconds.)
pub struct Joined {
    slots: Vec<Val>,
    hash: u128,
    /// (slot, value before) for every part applied, newest last.
    log: Vec<(u32, Val)>,
    /// Where each applied operation's entries begin in `log`.
    marks: Vec<usize>,
}

impl Joined {
    fn new(slots: Vec<Val>) -> Joined {
        let hash = slots
            .iter()
            .enumerate()
            .fold(0, |h, (slot, &v)| h ^ slot_key(slot as u32, v));
        Joined {
            slots,
            hash,
            log: Vec::new(),
            marks: Vec::new(),
        }
    }

    fn rollback(&mut self, mark: usize) {
        while self.log.len() > mark {
            if let Some((slot, old)) = self.log.pop() {
                self.assign(slot, old);
            }
        }
    }

    fn assign(&mut self, slot: u32, value: Val) {
        let old = self.slots[slot as usize];
        self.hash ^= slot_key(slot, old) ^ slot_key(slot, value);
        self.slots[slot as usize] = value;
    }
}

/// Parts write through the log, so that [`Joined::rollback`] can undo them.
impl Slots for Joined {
    fn value(&self, slot: u32) -> Option<Val> {
        self.slots.get(slot as usize).copied()
    }

    fn set(&mut self, slot: u32, value: Val) {
        self.log.push((slot, self.slots[slot as usize]));
        self.assign(slot, value);
    }
}

impl State for Joined {
    fn apply(&mut self, o: &Operation, values: &mut Interner) -> bool {
        let mark = self.log.len();
        // Every operation of a joined partition is compound; anything else is not one of its
        // operations.
        let fits = match o.kind {
            Kind::Multi { id, pending, .. } => step_parts(id, pending, values, self),
            _ => false,
        };
        let changed = self.log[mark..]
            .iter()
            .any(|&(slot, old)| self.slots[slot as usize] != old);
        if !fits || (o.ret == PENDING && !changed) {
            self.rollback(mark);
            return false;
        }
        self.marks.push(mark);
        true
    }

    fn undo(&mut self) {
        if let Some(mark) = self.marks.pop() {
            self.rollback(mark);
        }
    }

    fn key(&self) -> u128 {
        self.hash
    }
}

fn slot_key(slot: u32, value: Val) -> u128 {
    let x = (u64::from(slot) << 32) | u64::from(value);
    let a = splitmix(x ^ 0x6D6D_0000_0000_0000);
    let b = splitmix(x ^ 0xD6D6_0000_0000_0000);
    (u128::from(a) << 64) | u128::from(b)
}

/// Searches for a linearization of `ops` (one partition, in call order) from `init`: one
/// key's value, or the tuple of joined keys' values (changed in place with an undo log).
///
/// A completed *read-only* operation (a read, a refused cas, a not-found update or delete:
/// [`Kind::is_read_only`](super::model::Kind::is_read_only)) is never a choice: if the
/// history can be completed from here at all, it can be completed with that operation placed
/// first (it fits now, it leaves every state it fits in unchanged, so taking it out of its
/// later place changes nothing there, and everything that had to precede it already has). So
/// backtracking goes straight past such frames.
///
/// That must be a property of the operation, not of this step: an operation that merely
/// happens to leave *this* state unchanged (a write of the value already there, which needs
/// a value written twice, or once and then restored by a cas) is a choice, because placed
/// later, after some other write, it does change the state. Treating it as forced loses those
/// linearizations (the regression test
/// `regression_rewriting_the_current_value_is_still_a_choice`). With unique values, as in
/// most histories, a write never meets its own value, so the two rules prune the same frames.
///
/// `deepest`, when given, records the longest linearization reached; it costs a copy per new
/// depth, so it is only asked for on the small histories counterexamples are drawn from.
pub fn search(
    ops: &[Operation],
    init: Val,
    values: &mut Interner,
    meter: &mut Meter,
    deepest: Option<&mut Deepest>,
) -> (Found, SearchStats) {
    Resumable::new(ops, init, values, meter).resume(ops, values, meter, deepest)
}

/// A search that can stop when its meter's slice is spent and go on later from where it
/// stopped, with its list, stack and memo as they were: [`check_prepared`](super::check_prepared)
/// searches undecided keys in turns, and a key that needs `S` steps then costs `S` steps,
/// not the sum of every round's restart.
pub enum Resumable {
    /// One key's value.
    Single(Run<Single>),
    /// Keys joined by transactions.
    Joined(Run<Joined>),
}

impl Resumable {
    /// A search of `ops` (one partition, in call order) from `init`, not yet started.
    pub fn new(ops: &[Operation], init: Val, values: &Interner, meter: &Meter) -> Resumable {
        match values.tuple(init).map(<[Val]>::to_vec) {
            Some(slots) => Resumable::Joined(Run::new(ops, Joined::new(slots), meter)),
            None => Resumable::Single(Run::new(
                ops,
                Single {
                    state: init,
                    before: Vec::new(),
                },
                meter,
            )),
        }
    }

    /// Searches on until an answer or until `meter` gives up; the statistics count every
    /// step since [`Resumable::new`]. Resuming after anything but a spent slice starts over.
    pub fn resume(
        &mut self,
        ops: &[Operation],
        values: &mut Interner,
        meter: &mut Meter,
        deepest: Option<&mut Deepest>,
    ) -> (Found, SearchStats) {
        match self {
            Resumable::Single(run) => run.resume(ops, values, meter, deepest),
            Resumable::Joined(run) => run.resume(ops, values, meter, deepest),
        }
    }
}

/// A search's whole state between slices (see [`Resumable`]).
pub struct Run<S> {
    list: List,
    memo: Memo,
    stack: Vec<Frame>,
    state: S,
    set: u128,
    entry: u32,
    steps: u64,
}

impl<S: State> Run<S> {
    fn new(ops: &[Operation], state: S, meter: &Meter) -> Run<S> {
        let list = List::new(ops);
        let entry = list.next[0];
        Run {
            list,
            memo: Memo::new(meter.max_memo_entries),
            stack: Vec::new(),
            state,
            set: 0,
            entry,
            steps: 0,
        }
    }

    fn resume(
        &mut self,
        ops: &[Operation],
        values: &mut Interner,
        meter: &mut Meter,
        mut deepest: Option<&mut Deepest>,
    ) -> (Found, SearchStats) {
        let Run {
            list,
            memo,
            stack,
            state,
            set,
            entry,
            steps,
        } = self;
        let base = meter.steps;
        let mut taken = 0u64;
        let found = 'search: loop {
            // Steps in batches: reading the clock costs more than a step.
            for _ in 0..4096 {
                taken += 1;
                if *entry == NIL {
                    break 'search Found::Linearizable;
                }
                let code = list.code[*entry as usize];
                let op = code / 2;
                if code % 2 == 0 {
                    let o = &ops[op as usize];
                    if state.apply(o, values) {
                        let next_set = *set ^ op_key(op);
                        if memo.insert(next_set ^ state.key()) {
                            let forced = o.ret != PENDING && o.kind.is_read_only();
                            stack.push(Frame { op, forced });
                            *set = next_set;
                            list.lift(op);
                            note_depth(&mut deepest, stack);
                            *entry = list.next[0];
                            continue;
                        }
                        state.undo();
                    }
                    *entry = list.next[*entry as usize];
                } else {
                    note_blocked(&mut deepest, stack.len(), op);
                    let mut resume = None;
                    while let Some(frame) = stack.pop() {
                        state.undo();
                        *set ^= op_key(frame.op);
                        list.unlift(frame.op);
                        if !frame.forced {
                            resume = Some(frame.op);
                            break;
                        }
                    }
                    let Some(op) = resume else {
                        break 'search Found::Violation;
                    };
                    *entry = list.next[list.call_entry[op as usize] as usize];
                }
            }
            meter.steps = base + taken;
            if let Some(why) = meter.exhausted(values) {
                break Found::GaveUp(why);
            }
        };
        meter.steps = base + taken;
        *steps += taken;
        let stats = SearchStats {
            steps: *steps,
            memo_entries: memo.peak,
            memo_clears: memo.clears,
        };
        (found, stats)
    }
}

fn note_depth(deepest: &mut Option<&mut Deepest>, stack: &[Frame]) {
    if let Some(d) = deepest.as_deref_mut() {
        if stack.len() > d.order.len() {
            d.order = stack.iter().map(|f| f.op).collect();
            d.blocked = None;
        }
    }
}

fn note_blocked(deepest: &mut Option<&mut Deepest>, depth: usize, op: u32) {
    if let Some(d) = deepest.as_deref_mut() {
        if depth == d.order.len() && d.blocked.is_none() {
            d.blocked = Some(op);
        }
    }
}
