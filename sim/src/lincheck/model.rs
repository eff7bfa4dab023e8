//! The sequential models histories are checked against, compiled to interned values.
//!
//! Every value a history mentions is interned to a [`Val`] (`0` is "absent", Knossos's `nil`),
//! and every completed operation is compiled to a [`Kind`]: a small, `Copy` description of
//! which states it may be applied in and what state it leaves. [`step`] is then a few integer
//! comparisons, which is what lets the search run at millions of operations per second.
//!
//! The compilation of simkv operations ([`kind_of_simkv`]) is *derived from* the store's one
//! sequential specification, [`simkv_protocols::kv::apply_to_value`]: a test enumerates every
//! operation shape, recorded result and prior state and requires `step` to agree with
//! `apply_to_value` exactly, so the protocols and the checker cannot drift apart.

use simkv_protocols::{Op, OpResult};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// rustc's Fx hash: a multiply and a rotate per word. Interning hashes every value of a
/// history, and SipHash's resistance to chosen collisions buys nothing for a local check.
#[derive(Clone, Copy, Debug, Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.add(word);
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// [`FxHasher`] finished with murmur3's finaliser. Fx's low bits mix poorly over short
/// strings (each byte is a multiply, and a product's low bits see only the factors' low
/// bits), and a `HashMap` picks buckets by the low bits: keyed by simkv's values (`c12.345`)
/// with plain Fx, interning 366,000 of them took 3x as long as with this.
#[derive(Clone, Copy, Debug, Default)]
pub struct MixHasher(FxHasher);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn write_u64(&mut self, n: u64) {
        self.0.write_u64(n);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0.finish();
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A `HashMap` keyed by strings, with [`MixHasher`]; for lookups only, like [`FxHashMap`].
pub type StrHashMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// A string's hash for [`Interner`]: its bytes through [`MixHasher`].
fn str_hash(s: &str) -> u64 {
    let mut hasher = MixHasher::default();
    hasher.write(s.as_bytes());
    hasher.finish()
}

/// A `HashMap` with [`FxHasher`], for lookups only (never iterated into output).
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// An interned value; [`ABSENT`] is the absent key (EDN's `nil`).
pub type Val = u32;

/// The interned "absent" value.
pub const ABSENT: Val = 0;

/// A value as histories spell it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// A string (simkv's values, EDN strings); the only values `append` works on.
    Str(String),
    /// Any other EDN value, by its canonical EDN text (`3`, `:a`, `[1 2]`).
    Edn(String),
    /// Several keys' values at once: the state of a partition that transactions join (see
    /// [`Kind::Multi`]), one slot per key.
    Tuple(Box<[Val]>),
}

/// Interns values. Lookups go through a `HashMap`; nothing iterates it, so no hash order
/// reaches an output.
#[derive(Clone, Debug)]
pub struct Interner {
    vals: Vec<Option<Value>>,
    /// Strings by their hash: the id of the first string seen with it (its text is in
    /// `vals`, so a string is stored once). Another string with the same hash goes to
    /// `collided`.
    strs: FxHashMap<u64, Val>,
    collided: StrHashMap<String, Val>,
    // Keyed by `String` so that a lookup borrows a `&str` and allocates nothing.
    edns: StrHashMap<String, Val>,
    tuples: FxHashMap<Box<[Val]>, Val>,
    /// The compound operations [`Kind::Multi`] refers to, by index.
    compounds: Vec<Compound>,
    /// Bytes of every value interned, counted twice over (the value and its map key).
    bytes: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            vals: vec![None],
            strs: FxHashMap::default(),
            collided: StrHashMap::default(),
            edns: StrHashMap::default(),
            tuples: FxHashMap::default(),
            compounds: Vec::new(),
            bytes: 0,
        }
    }
}

impl Interner {
    /// An interner with room for `strings` strings, so that interning a history whose size
    /// is known does not grow (and rehash) its tables over and over.
    pub fn with_capacity(strings: usize) -> Interner {
        let mut values = Interner::default();
        values.vals.reserve(strings);
        values.strs.reserve(strings);
        values
    }

    /// The id of `value`, interning it on first sight.
    pub fn intern(&mut self, value: Value) -> Val {
        match value {
            Value::Str(s) => self.intern_str(&s),
            Value::Edn(e) => self.intern_edn(&e),
            Value::Tuple(t) => self.intern_tuple(&t),
        }
    }

    /// The id of a tuple of values.
    pub fn intern_tuple(&mut self, slots: &[Val]) -> Val {
        if let Some(&id) = self.tuples.get(slots) {
            return id;
        }
        let id = self.vals.len() as Val;
        self.bytes += 2 * std::mem::size_of_val(slots);
        self.vals.push(Some(Value::Tuple(slots.into())));
        self.tuples.insert(slots.into(), id);
        id
    }

    /// The slots of a tuple value (`None` if `id` is not a tuple).
    pub fn tuple(&self, id: Val) -> Option<&[Val]> {
        match self.get(id) {
            Some(Value::Tuple(t)) => Some(t),
            _ => None,
        }
    }

    /// Registers a compound operation; [`Kind::Multi`] names it by the returned index.
    pub fn add_compound(&mut self, compound: Compound) -> u32 {
        self.bytes += compound.parts.len() * std::mem::size_of::<Part>();
        self.compounds.push(compound);
        (self.compounds.len() - 1) as u32
    }

    /// The compound operation `id`.
    pub fn compound(&self, id: u32) -> &Compound {
        &self.compounds[id as usize]
    }

    /// The id of a string value.
    pub fn intern_str(&mut self, s: &str) -> Val {
        let hash = str_hash(s);
        let id = self.vals.len() as Val;
        match self.strs.entry(hash) {
            Entry::Vacant(slot) => {
                slot.insert(id);
            }
            Entry::Occupied(first) => {
                let first = *first.get();
                if matches!(self.get(first), Some(Value::Str(t)) if t == s) {
                    return first;
                }
                if let Some(&other) = self.collided.get(s) {
                    return other;
                }
                self.collided.insert(s.to_string(), id);
            }
        }
        // Counted as when the map held its own copy, so that budgets mean what they did.
        self.bytes += 2 * s.len();
        self.vals.push(Some(Value::Str(s.to_string())));
        id
    }

    /// The id of a non-string EDN value, given its canonical text.
    pub fn intern_edn(&mut self, text: &str) -> Val {
        if let Some(&id) = self.edns.get(text) {
            return id;
        }
        let id = self.vals.len() as Val;
        self.bytes += 2 * text.len();
        self.vals.push(Some(Value::Edn(text.to_string())));
        self.edns.insert(text.to_string(), id);
        id
    }

    /// Bytes held by the interned values (an estimate: text twice, no overhead).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The value behind `id` (`None`: absent).
    pub fn get(&self, id: Val) -> Option<&Value> {
        self.vals.get(id as usize).and_then(|v| v.as_ref())
    }

    /// The string behind `id`, if it is one; absent reads as `""` (append's rule).
    fn as_str(&self, id: Val) -> Option<&str> {
        match self.get(id) {
            None => Some(""),
            Some(Value::Str(s)) => Some(s),
            Some(Value::Edn(_) | Value::Tuple(_)) => None,
        }
    }

    /// How a value is shown in counterexamples: strings bare, EDN as EDN, absent as `nil`.
    pub fn show(&self, id: Val) -> String {
        match self.get(id) {
            None => "nil".to_string(),
            Some(Value::Str(s)) => s.clone(),
            Some(Value::Edn(e)) => e.clone(),
            Some(Value::Tuple(t)) => {
                let shown: Vec<String> = t.iter().map(|v| self.show(*v)).collect();
                format!("[{}]", shown.join(" "))
            }
        }
    }

    /// How many values are interned (for memory accounting).
    pub fn len(&self) -> usize {
        self.vals.len()
    }

    /// Whether only "absent" is interned.
    pub fn is_empty(&self) -> bool {
        self.vals.len() == 1
    }
}

/// What a compare-and-set's completion said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CasOutcome {
    /// It applied: the value was `expected` and became `new`.
    Applied,
    /// It did not apply; the value it saw, when known (simkv's `current`).
    Refused(Option<Val>),
    /// Unknown (info): it applied if the value was `expected`, else changed nothing.
    Unknown,
}

/// One operation, compiled: which states admit it and what it leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A read that returned this value (`ABSENT`: not found). Unconstrained reads are dropped.
    Read(Val),
    /// A read that returned concurrent versions (siblings, a tuple of values): it fits a state
    /// holding any one of them. A linearizable store never returns siblings; this explains
    /// such a read as leniently as possible, so that a violation it shows is a real one.
    ReadAny(Val),
    /// Sets the value whatever it was (put, write).
    Write(Val),
    /// Compare-and-set.
    Cas {
        /// The value required.
        expected: Val,
        /// The value written when it matches.
        new: Val,
        /// What the completion said.
        outcome: CasOutcome,
    },
    /// Sets the value only when present; `found` is what the completion said (`None`: unknown).
    Update {
        /// The value written.
        value: Val,
        /// Whether the key was present.
        found: Option<bool>,
    },
    /// Removes the value; `found` as for update.
    Delete {
        /// Whether the key was present.
        found: Option<bool>,
    },
    /// Appends a string; `result` is the whole new value when the completion said it.
    Append {
        /// The suffix.
        suffix: Val,
        /// The value after appending, when known.
        result: Option<Val>,
    },
    /// Several single-key kinds applied in order, atomically, to the slots of a tuple state:
    /// a transaction, or any operation of a partition that transactions join (so that all its
    /// operations speak of one state). `id` names the [`Compound`] in the [`Interner`].
    Multi {
        /// The compound's index.
        id: u32,
        /// Whether every part is read-only (see [`Kind::is_read_only`]).
        read_only: bool,
        /// Whether its parts apply in their pending form ([`pending_form`]): the operation's
        /// completion was cut off.
        pending: bool,
    },
    /// Adds an element to a list (Elle's list-append): the state is absent (the empty list)
    /// or the EDN vector of the elements so far, interned as its text.
    ListAppend {
        /// The element, as EDN text.
        element: Val,
    },
    /// Changes nothing and constrains nothing (an unfinished read).
    Nop,
    /// Completed with a result no state can produce (say, a put answered not-found).
    Never,
}

impl Kind {
    /// Whether the operation cannot change the value, judging by its recorded result: it
    /// leaves every state it fits in unchanged. The search's pruning and the shrinker's
    /// removals rely on exactly that; an operation that leaves only *some* states unchanged
    /// (a write, in a state already holding its value) is not read-only.
    pub fn is_read_only(&self) -> bool {
        match self {
            Kind::Read(_) | Kind::ReadAny(_) | Kind::Nop | Kind::Never => true,
            Kind::Cas { outcome, .. } => matches!(outcome, CasOutcome::Refused(_)),
            Kind::Update { found, .. } | Kind::Delete { found } => *found == Some(false),
            Kind::Multi { read_only, .. } => *read_only,
            Kind::Write(_) | Kind::Append { .. } | Kind::ListAppend { .. } => false,
        }
    }
}

/// What of a key's prior value an operation's outcome depends on (by its recorded result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sees {
    /// Nothing: it fits every state the same way (a write, a pending delete, a no-op).
    Nothing,
    /// Only whether the value is this one (a read, a cas's expected or seen value, a
    /// not-found update or delete: absence).
    Value(Val),
    /// More: presence, a whole set of values, or a value built on the prior one (an
    /// append).
    Everything,
}

/// What of its key's prior value a single-key kind depends on. A write no remaining
/// operation [`Sees`] cannot be told from its absence: the shrinker's and the pruning's
/// soundness rest on this.
pub fn sees(kind: &Kind) -> Sees {
    match *kind {
        Kind::Read(v) => Sees::Value(v),
        Kind::Cas {
            outcome: CasOutcome::Refused(Some(seen)),
            ..
        } => Sees::Value(seen),
        Kind::Cas {
            outcome: CasOutcome::Refused(None),
            ..
        } => Sees::Everything,
        Kind::Cas { expected, .. } => Sees::Value(expected),
        Kind::Update {
            found: Some(false), ..
        }
        | Kind::Delete { found: Some(false) } => Sees::Value(ABSENT),
        Kind::ReadAny(_)
        | Kind::Update { .. }
        | Kind::Delete { found: Some(true) }
        | Kind::Append { .. }
        | Kind::ListAppend { .. }
        | Kind::Multi { .. } => Sees::Everything,
        Kind::Write(_) | Kind::Delete { found: None } | Kind::Nop | Kind::Never => Sees::Nothing,
    }
}

/// The single-key parts of a kind with their slots: a compound's parts (in their pending form
/// if it is pending), or the kind itself on slot 0.
pub fn parts(kind: &Kind, values: &Interner) -> Vec<(u32, Kind)> {
    match *kind {
        Kind::Multi { id, pending, .. } => values
            .compound(id)
            .parts
            .iter()
            .map(|p| {
                let kind = if pending {
                    pending_form(&p.kind)
                } else {
                    p.kind
                };
                (p.slot, kind)
            })
            .collect(),
        single => vec![(0, single)],
    }
}

/// One part of a [`Kind::Multi`]: a single-key kind, applied to one slot of the tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Part {
    /// The slot (the key's place in the partition's tuple).
    pub slot: u32,
    /// What it does to that key's value.
    pub kind: Kind,
}

/// The parts of a [`Kind::Multi`], and how to name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compound {
    /// The parts, in the order they apply.
    pub parts: Vec<Part>,
    /// Each part's key, as the history spells it, for counterexamples.
    pub keys: Vec<String>,
    /// Whether it is a transaction (else one single-key operation in a joined partition).
    pub txn: bool,
}

impl Compound {
    /// The [`Kind::Multi`] for these parts, registered in `values`.
    pub fn register(self, values: &mut Interner) -> Kind {
        let read_only = self.parts.iter().all(|p| p.kind.is_read_only());
        let id = values.add_compound(self);
        Kind::Multi {
            id,
            read_only,
            pending: false,
        }
    }
}

/// Applies `kind` in `state`: the state after it, or `None` when it cannot take effect there
/// with the result it recorded. Appends may intern a new value.
pub fn step(kind: &Kind, state: Val, values: &mut Interner) -> Option<Val> {
    match *kind {
        Kind::Read(v) => (state == v).then_some(state),
        Kind::ReadAny(set) => values.tuple(set)?.contains(&state).then_some(state),
        Kind::Write(v) => Some(v),
        Kind::Cas {
            expected,
            new,
            outcome,
        } => match outcome {
            CasOutcome::Applied => (state == expected).then_some(new),
            CasOutcome::Refused(None) => (state != expected).then_some(state),
            CasOutcome::Refused(Some(seen)) => {
                (state != expected && state == seen).then_some(state)
            }
            CasOutcome::Unknown => Some(if state == expected { new } else { state }),
        },
        Kind::Update { value, found } => match (found, state != ABSENT) {
            (Some(true), true) | (None, true) => Some(value),
            (Some(false), false) | (None, false) => Some(ABSENT),
            _ => None,
        },
        Kind::Delete { found } => match (found, state != ABSENT) {
            (Some(f), present) if f != present => None,
            _ => Some(ABSENT),
        },
        Kind::Append { suffix, result } => step_append(state, suffix, result, values),
        Kind::Multi { id, pending, .. } => step_multi(id, pending, state, values),
        Kind::ListAppend { element } => step_list_append(state, element, values),
        Kind::Nop => Some(state),
        Kind::Never => None,
    }
}

/// Applies a compound's parts in order to a copy of the tuple `state`, all or nothing.
fn step_multi(id: u32, pending: bool, state: Val, values: &mut Interner) -> Option<Val> {
    let mut slots: Vec<Val> = values.tuple(state)?.to_vec();
    step_parts(id, pending, values, &mut slots).then(|| values.intern_tuple(&slots))
}

/// The values of a joined partition's keys, by slot, as [`step_parts`] reads and writes them.
pub trait Slots {
    /// The slot's value (`None`: no such slot).
    fn value(&self, slot: u32) -> Option<Val>;
    /// Sets the slot's value.
    fn set(&mut self, slot: u32, value: Val);
}

impl Slots for Vec<Val> {
    fn value(&self, slot: u32) -> Option<Val> {
        self.get(slot as usize).copied()
    }

    fn set(&mut self, slot: u32, value: Val) {
        self[slot as usize] = value;
    }
}

/// Steps compound `id`'s parts in order (in their pending form if `pending`), each from its
/// slot's current value, setting each result. False as soon as a part does not fit; undoing
/// what was set is the caller's.
pub fn step_parts(id: u32, pending: bool, values: &mut Interner, slots: &mut impl Slots) -> bool {
    for i in 0..values.compound(id).parts.len() {
        let part = values.compound(id).parts[i];
        let kind = if pending {
            pending_form(&part.kind)
        } else {
            part.kind
        };
        let Some(current) = slots.value(part.slot) else {
            return false;
        };
        let Some(next) = step(&kind, current, values) else {
            return false;
        };
        slots.set(part.slot, next);
    }
    true
}

/// `[a b]` + `c` = `[a b c]`, by text: lists are interned as their canonical EDN text.
fn step_list_append(state: Val, element: Val, values: &mut Interner) -> Option<Val> {
    let Some(Value::Edn(element)) = values.get(element) else {
        return None;
    };
    let list = match values.get(state) {
        None => format!("[{element}]"),
        Some(Value::Edn(list)) if list.starts_with('[') && list.ends_with(']') => {
            format!("{} {element}]", &list[..list.len() - 1])
        }
        Some(_) => return None,
    };
    Some(values.intern_edn(&list))
}

fn step_append(state: Val, suffix: Val, result: Option<Val>, vals: &mut Interner) -> Option<Val> {
    let cur = vals.as_str(state)?;
    let suf = vals.as_str(suffix)?;
    match result {
        Some(r) => {
            // Compare without building the concatenation: this runs in the search's loop.
            let want = vals.as_str(r)?;
            let fits = vals.get(r).is_some()
                && want.len() == cur.len() + suf.len()
                && want.starts_with(cur)
                && want.ends_with(suf);
            fits.then_some(r)
        }
        None => {
            let joined = format!("{cur}{suf}");
            Some(vals.intern_str(&joined))
        }
    }
}

/// Compiles a simkv operation and its recorded result (`None`: info, or never completed).
///
/// Returns `None` for operations that constrain nothing and so are dropped (an unfinished
/// get). The mapping mirrors `apply_to_value` case by case; `tests::kinds_agree_with_spec`
/// checks that it does.
pub fn kind_of_simkv(op: &Op, result: Option<&OpResult>, values: &mut Interner) -> Option<Kind> {
    let Some(result) = result else {
        return pending_kind_of_simkv(op, values);
    };
    let mut val = |s: &str| values.intern_str(s);
    let kind = match (op, result) {
        (Op::Get { .. }, OpResult::Ok { value: Some(v) }) => Kind::Read(val(v)),
        (Op::Get { .. }, OpResult::NotFound) => Kind::Read(ABSENT),
        (Op::Get { .. }, OpResult::Siblings { values: vs }) => {
            let set: Vec<Val> = vs
                .iter()
                .map(|v| v.as_deref().map_or(ABSENT, &mut val))
                .collect();
            Kind::ReadAny(values.intern_tuple(&set))
        }
        (Op::Put { value, .. }, OpResult::Ok { value: Some(r) }) if r == value => {
            Kind::Write(val(value))
        }
        (Op::Update { value, .. }, OpResult::Ok { value: Some(r) }) if r == value => Kind::Update {
            value: val(value),
            found: Some(true),
        },
        (Op::Update { value, .. }, OpResult::NotFound) => Kind::Update {
            value: val(value),
            found: Some(false),
        },
        (Op::Delete { .. }, OpResult::Ok { value: None }) => Kind::Delete { found: Some(true) },
        (Op::Delete { .. }, OpResult::NotFound) => Kind::Delete { found: Some(false) },
        (Op::Cas { expected, new, .. }, OpResult::Ok { value: Some(r) }) if r == new => Kind::Cas {
            expected: val(expected),
            new: val(new),
            outcome: CasOutcome::Applied,
        },
        (Op::Cas { expected, new, .. }, OpResult::PreconditionFailed { current }) => {
            let seen = current.as_deref().map_or(ABSENT, &mut val);
            Kind::Cas {
                expected: val(expected),
                new: val(new),
                outcome: CasOutcome::Refused(Some(seen)),
            }
        }
        (Op::Append { value, .. }, OpResult::Ok { value: Some(r) }) => Kind::Append {
            suffix: val(value),
            result: Some(val(r)),
        },
        // Txns are compiled part by part, into a Kind::Multi, by the caller.
        _ => Kind::Never,
    };
    Some(kind)
}

/// Compiles a simkv operation whose outcome is unknown: it may have applied, with whatever
/// result the specification gives, or not at all.
pub fn pending_kind_of_simkv(op: &Op, values: &mut Interner) -> Option<Kind> {
    let mut val = |s: &str| values.intern_str(s);
    Some(match op {
        Op::Get { .. } => return None,
        Op::Put { value, .. } => Kind::Write(val(value)),
        Op::Update { value, .. } => Kind::Update {
            value: val(value),
            found: None,
        },
        Op::Delete { .. } => Kind::Delete { found: None },
        Op::Cas { expected, new, .. } => Kind::Cas {
            expected: val(expected),
            new: val(new),
            outcome: CasOutcome::Unknown,
        },
        Op::Append { value, .. } => Kind::Append {
            suffix: val(value),
            result: None,
        },
        // Txns are compiled part by part, into a Kind::Multi, by the caller; a txn nested in
        // one (malformed) constrains nothing.
        Op::Txn { .. } => return None,
    })
}

/// The form an operation takes when its completion is cut off (the counterexample's prefix
/// cut): it may apply, with any result its specification allows, or never.
pub fn pending_form(kind: &Kind) -> Kind {
    match *kind {
        Kind::Read(_) | Kind::ReadAny(_) | Kind::Nop => Kind::Nop,
        Kind::Write(v) => Kind::Write(v),
        Kind::Cas { expected, new, .. } => Kind::Cas {
            expected,
            new,
            outcome: CasOutcome::Unknown,
        },
        Kind::Update { value, .. } => Kind::Update { value, found: None },
        Kind::Delete { .. } => Kind::Delete { found: None },
        Kind::Append { suffix, .. } => Kind::Append {
            suffix,
            result: None,
        },
        Kind::ListAppend { element } => Kind::ListAppend { element },
        // An impossible result hides which write it was; as pending, it may be anything a
        // no-op explains, which is the weakest claim we can still make soundly about a cut.
        Kind::Never => Kind::Nop,
        // Whether the pending parts are read-only is not known here: claiming they are not
        // is always sound (a choice for the search, never removed by the shrinker).
        Kind::Multi { id, .. } => Kind::Multi {
            id,
            read_only: false,
            pending: true,
        },
    }
}

/// Renders an operation for counterexamples: `write 3`, `read 3`, `cas 1->2`, ...
pub fn describe(kind: &Kind, values: &Interner) -> String {
    let v = |id: Val| values.show(id);
    match *kind {
        Kind::Read(x) => format!("read {}", v(x)),
        Kind::ReadAny(set) => format!("read siblings {}", v(set)),
        Kind::Write(x) => format!("write {}", v(x)),
        Kind::Cas {
            expected,
            new,
            outcome,
        } => {
            let tail = match outcome {
                CasOutcome::Applied => String::new(),
                CasOutcome::Refused(Some(seen)) => format!(" refused (saw {})", v(seen)),
                CasOutcome::Refused(None) => " refused".to_string(),
                CasOutcome::Unknown => String::new(),
            };
            format!("cas {}->{}{tail}", v(expected), v(new))
        }
        Kind::Update { value, found } => match found {
            Some(false) => format!("update {} (not found)", v(value)),
            _ => format!("update {}", v(value)),
        },
        Kind::Delete { found } => match found {
            Some(false) => "delete (not found)".to_string(),
            _ => "delete".to_string(),
        },
        Kind::Append { suffix, result } => match result {
            Some(r) => format!("append {} -> {}", v(suffix), v(r)),
            None => format!("append {}", v(suffix)),
        },
        Kind::Multi { id, pending, .. } => {
            let compound = values.compound(id);
            let parts: Vec<String> = compound
                .parts
                .iter()
                .zip(&compound.keys)
                .map(|(part, key)| {
                    let kind = if pending {
                        pending_form(&part.kind)
                    } else {
                        part.kind
                    };
                    format!("k{key} {}", describe(&kind, values))
                })
                .collect();
            if compound.txn {
                format!("txn [{}]", parts.join(", "))
            } else {
                parts.join(", ")
            }
        }
        Kind::ListAppend { element } => format!("append {}", v(element)),
        Kind::Nop => "no-op".to_string(),
        Kind::Never => "impossible result".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simkv_protocols::kv::apply_to_value;

    /// Strings are found by their hash; two strings with one hash still get two ids.
    #[test]
    fn interning_tells_apart_strings_whose_hashes_collide() {
        let mut vals = Interner::default();
        let a = vals.intern_str("a");
        assert_eq!(vals.intern_str("a"), a);
        // Make "b" collide with "a".
        vals.strs.insert(str_hash("b"), a);
        let b = vals.intern_str("b");
        assert_ne!(a, b);
        assert_eq!(vals.intern_str("b"), b);
        assert_eq!(vals.intern_str("a"), a);
        assert_eq!(vals.show(b), "b");
        assert_eq!(vals.bytes(), 4);
    }

    fn states() -> Vec<Option<simkv_protocols::Value>> {
        vec![None, Some("a".into()), Some("b".into()), Some("ab".into())]
    }

    fn ops() -> Vec<Op> {
        let s = |x: &str| simkv_protocols::Value::from(x);
        let mut out = vec![Op::Get { key: 1 }, Op::Delete { key: 1 }];
        for a in ["a", "b", "ab"] {
            out.push(Op::Put {
                key: 1,
                value: s(a),
            });
            out.push(Op::Update {
                key: 1,
                value: s(a),
            });
            out.push(Op::Append {
                key: 1,
                value: s(a),
            });
            for b in ["a", "b"] {
                out.push(Op::Cas {
                    key: 1,
                    expected: s(a),
                    new: s(b),
                });
            }
        }
        out
    }

    fn results() -> Vec<OpResult> {
        let mut out = vec![OpResult::NotFound, OpResult::Ok { value: None }];
        for s in states() {
            out.push(OpResult::PreconditionFailed { current: s.clone() });
            if s.is_some() {
                out.push(OpResult::Ok { value: s });
            }
        }
        out
    }

    /// The compiled step must agree with the store's specification on every operation shape,
    /// recorded result and prior state: that is what makes the checker's model the store's.
    #[test]
    fn kinds_agree_with_spec() {
        let mut values = Interner::default();
        for op in ops() {
            for result in results() {
                let kind = kind_of_simkv(&op, Some(&result), &mut values).unwrap();
                for before in states() {
                    let mut after = before.clone();
                    let spec = apply_to_value(&mut after, &op);
                    let want = (spec == result).then(|| after.clone().map(String::from));
                    let start = before.as_deref().map_or(ABSENT, |s| values.intern_str(s));
                    let got = step(&kind, start, &mut values).map(|id| values.show(id));
                    let want = want.map(|w| w.unwrap_or_else(|| "nil".into()));
                    assert_eq!(got, want, "{op} {result:?} from {before:?}");
                }
            }
        }
    }

    /// An unknown outcome may apply with whatever result the specification gives.
    #[test]
    fn pending_kinds_agree_with_spec() {
        let mut values = Interner::default();
        for op in ops() {
            let Some(kind) = kind_of_simkv(&op, None, &mut values) else {
                assert!(matches!(op, Op::Get { .. }));
                continue;
            };
            for before in states() {
                let mut after = before.clone();
                apply_to_value(&mut after, &op);
                let start = before.as_deref().map_or(ABSENT, |s| values.intern_str(s));
                let got = step(&kind, start, &mut values).map(|id| values.show(id));
                assert_eq!(
                    got,
                    Some(after.map_or_else(|| "nil".into(), String::from)),
                    "{op}"
                );
            }
        }
    }
}
