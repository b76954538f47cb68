//! Type-erased values that flow between nodes.

use std::any::{Any, TypeId};
use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};

use smallbox::SmallBox;
use smallbox::space::S2;

/// A node's output as the executor stores it.
///
/// Word-sized values without drop glue (numbers, ids, flags: see [`is_word`]) are kept as
/// [`Word`]s, which the executor stores in a dense array of 16-byte cells, so that the values
/// a node reads share cache lines. Other small values (up to two words) live inline in the
/// slot: no allocation. Values that an async node reads must be shareable (`Arc`), since the
/// node's future owns its inputs; the plan marks those producers (and requested outputs) to
/// store `Shared`.
pub(crate) enum Value {
    Word(Word),
    Inline(SmallBox<dyn Any + Send + Sync, S2>),
    Shared(Arc<dyn Any + Send + Sync>),
}

/// Whether values of `T` are stored as [`Word`]s: at most 8 bytes, alignment at most 8, and
/// no drop glue (so a stored value never needs dropping and its bytes can be kept as is).
#[inline(always)]
pub(crate) const fn is_word<T>() -> bool {
    size_of::<T>() <= 8 && align_of::<T>() <= 8 && !std::mem::needs_drop::<T>()
}

/// The type of a word's value, as a reference to its `TypeId` (a thin pointer, so a cell can
/// hold it in one atomic word).
type TypeOf = &'static TypeId;

/// `T`'s [`TypeOf`]: a constant, so reading it calls nothing.
#[inline(always)]
fn type_of<T: Any>() -> TypeOf {
    const { &TypeId::of::<T>() }
}

/// A word-sized value and its type.
///
/// The bytes sit in an `UnsafeCell`: a value handed out as `&T` may have interior mutability
/// (`AtomicU64` is word-sized), and writing through it must not write memory the compiler
/// takes for immutable.
pub(crate) struct Word {
    type_of: TypeOf,
    bits: UnsafeCell<MaybeUninit<u64>>,
}

// SAFETY: the bytes are a `T: Send + Sync` (`Value::new` requires it); they change only through
// `T`'s own interior mutability, reached through `&T`, which `T: Sync` makes safe to share.
unsafe impl Sync for Word {}

impl Word {
    /// The value back unless [`is_word::<T>()`](is_word).
    #[inline]
    fn new<T: Any>(value: T) -> Result<Self, T> {
        if !is_word::<T>() {
            return Err(value);
        }
        let mut bits = MaybeUninit::<u64>::uninit();
        // SAFETY: `T` fits in 8 bytes with alignment at most 8 (checked above), so the write
        // is in bounds and aligned; bytes `T` leaves uninitialised stay `MaybeUninit`. `T` has
        // no drop glue, so keeping its bytes instead of the value drops nothing.
        unsafe { bits.as_mut_ptr().cast::<T>().write(value) };
        Ok(Self {
            type_of: type_of::<T>(),
            bits: UnsafeCell::new(bits),
        })
    }
}

/// Whether `stored` is `T`'s. Comparing the addresses is the fast path; the same constant
/// may exist at several addresses (one per codegen unit), so unequal addresses are settled by
/// comparing the ids themselves (a load, no call).
#[inline(always)]
fn is_type<T: Any>(stored: TypeOf) -> bool {
    std::ptr::eq(stored, type_of::<T>()) || *stored == TypeId::of::<T>()
}

/// A write-once cell for a [`Word`]: 16 bytes, four to a cache line.
///
/// Same contract as [`WriteOnce`](crate::write_once::WriteOnce): one writer, which publishes
/// the value with a release store of its type; readers see it after an acquire load.
pub(crate) struct WordCell {
    /// Null while empty, then the value's [`TypeOf`].
    type_of: AtomicPtr<TypeId>,
    bits: UnsafeCell<MaybeUninit<u64>>,
    /// Debug builds check the single-writer contract (see `WriteOnce`).
    #[cfg(debug_assertions)]
    claimed: std::sync::atomic::AtomicBool,
}

// SAFETY: `bits` is written once, before `type_of` is set with release ordering, and read only
// after `type_of` is observed non-zero with acquire ordering; `set` refuses a second write.
// Values stored are `Send + Sync` (`Value::new` requires it).
unsafe impl Sync for WordCell {}

impl WordCell {
    /// Stores `word` unless the cell holds a value already (then `word` is handed back).
    ///
    /// # Safety
    ///
    /// As [`WriteOnce::set`](crate::write_once::WriteOnce::set): no other thread may call
    /// `set` on this cell concurrently.
    #[cfg(test)]
    pub(crate) unsafe fn set(&self, word: Word) -> Result<(), Word> {
        if !self.type_of.load(Ordering::Relaxed).is_null() {
            return Err(word);
        }
        #[cfg(debug_assertions)]
        assert!(
            self.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            "WordCell written by two threads at once"
        );
        // SAFETY: empty, and by the caller's contract no other thread writes it now; readers
        // wait for the release store below.
        unsafe { *self.bits.get() = word.bits.into_inner() };
        self.type_of.store(
            std::ptr::from_ref(word.type_of).cast_mut(),
            Ordering::Release,
        );
        Ok(())
    }

    /// Stores `word` in an empty cell without reading it first (see
    /// [`WriteOnce::set_empty`](crate::write_once::WriteOnce::set_empty)).
    ///
    /// # Safety
    ///
    /// As `WriteOnce::set_empty`: the cell is empty, and no other thread reads or writes it
    /// until it observes the release store of the type here.
    #[inline]
    pub(crate) unsafe fn set_empty(&self, word: Word) {
        #[cfg(debug_assertions)]
        assert!(
            self.claimed
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
            "WordCell::set_empty on a written or contended cell"
        );
        // SAFETY: empty and not accessed by another thread (the caller's contract); readers
        // wait for the release store below.
        unsafe { *self.bits.get() = word.bits.into_inner() };
        self.type_of.store(
            std::ptr::from_ref(word.type_of).cast_mut(),
            Ordering::Release,
        );
    }

    /// The value, if the cell holds a `T`.
    #[inline]
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        let stored = self.type_of.load(Ordering::Acquire);
        // SAFETY: a non-null `type_of` was stored from a `TypeOf` (a `&'static TypeId`) by
        // `set`, so it points to a live, aligned `TypeId` that is never written.
        let stored: TypeOf = unsafe { stored.as_ref() }?;
        if !is_type::<T>(stored) {
            return None;
        }
        // SAFETY: `bits` holds a `T` written by `Word::new` (its type was just checked),
        // before the release store observed above, and is never written again while the cell
        // is shared; `T` fits and is aligned (`is_word`), since `Word::new` stored it.
        Some(unsafe { &*self.bits.get().cast::<T>() })
    }

    /// Moves the word out, leaving the cell empty.
    pub(crate) fn take(&mut self) -> Option<Word> {
        let stored = std::mem::replace(self.type_of.get_mut(), std::ptr::null_mut());
        #[cfg(debug_assertions)]
        {
            *self.claimed.get_mut() = false;
        }
        // SAFETY: as in `get`, a non-null `type_of` points to a `&'static TypeId`.
        let type_of: TypeOf = unsafe { stored.as_ref() }?;
        Some(Word {
            type_of,
            bits: UnsafeCell::new(*self.bits.get_mut()),
        })
    }

    /// Empties the cell for reuse (values need no drop: see [`is_word`]).
    pub(crate) fn clear(&mut self) {
        *self.type_of.get_mut() = std::ptr::null_mut();
        #[cfg(debug_assertions)]
        {
            *self.claimed.get_mut() = false;
        }
    }
}

/// `n` empty word cells, as zeroed memory (see `write_once::empty_cells`).
pub(crate) fn empty_words(n: usize) -> Box<[WordCell]> {
    // SAFETY: all-zero bytes are an empty `WordCell`: `type_of` null (empty), `claimed` false,
    // and `bits` is `MaybeUninit`.
    unsafe { Box::<[WordCell]>::new_zeroed_slice(n).assume_init() }
}

impl Value {
    /// Wraps a node's output; `share` when an async consumer or the caller will own it.
    #[inline]
    pub(crate) fn new<T: Any + Send + Sync>(value: T, share: bool) -> Self {
        if share {
            Self::Shared(Arc::new(value))
        } else {
            match Word::new(value) {
                Ok(word) => Self::Word(word),
                Err(value) => Self::Inline(smallbox::smallbox!(value)),
            }
        }
    }

    #[inline]
    pub(crate) fn downcast_ref<T: Any>(&self) -> Option<&T> {
        match self {
            Self::Word(word) if is_type::<T>(word.type_of) => {
                // SAFETY: `bits` holds a `T` (type just checked), stored by `Word::new`.
                Some(unsafe { &*word.bits.get().cast::<T>() })
            }
            Self::Word(_) => None,
            Self::Inline(inline) => inline.downcast_ref(),
            Self::Shared(shared) => shared.downcast_ref(),
        }
    }

    /// The shared pointer, for async consumers (`None` for inline values).
    pub(crate) fn shared(&self) -> Option<&Arc<dyn Any + Send + Sync>> {
        match self {
            Self::Shared(shared) => Some(shared),
            Self::Word(_) | Self::Inline(_) => None,
        }
    }

    /// The value itself, if it is a word `T` or a shared `T` that nothing else shares
    /// (requested outputs are stored shared unless they are words).
    pub(crate) fn take<T: Any + Send + Sync>(self) -> Result<T, Self> {
        match self {
            Self::Word(word) if is_type::<T>(word.type_of) => {
                // SAFETY: `bits` holds a `T` (type just checked), stored by `Word::new`; `T`
                // has no drop glue (`is_word`), so reading its bytes out leaves nothing to drop.
                Ok(unsafe { word.bits.get().cast::<T>().read() })
            }
            Self::Word(_) | Self::Inline(_) => Err(self),
            Self::Shared(shared) => match shared.downcast::<T>() {
                Ok(typed) => Arc::try_unwrap(typed).map_err(|arc| Self::Shared(arc)),
                Err(other) => Err(Self::Shared(other)),
            },
        }
    }
}

/// A Rust type, remembered by id (for checks) and by name (for error messages).
#[derive(Clone, Copy)]
pub struct TypeTag {
    id: TypeId,
    name: &'static str,
    /// Whether unshared values of the type are words (see [`is_word`]).
    word: bool,
}

impl TypeTag {
    /// The tag of `T`.
    pub fn of<T: Any>() -> Self {
        Self {
            id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
            word: is_word::<T>(),
        }
    }

    /// Whether a value of this type, stored unshared, goes to a word cell rather than a slot.
    pub(crate) fn is_word(&self) -> bool {
        self.word
    }

    /// The type's name as the compiler spells it.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl PartialEq for TypeTag {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for TypeTag {}

impl fmt::Debug for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl fmt::Display for TypeTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// A value handed to a run (an external input or an override), with its type remembered so a
/// wrong type is reported by name instead of failing inside a node.
pub(crate) struct TypedValue {
    pub(crate) value: Value,
    pub(crate) ty: TypeTag,
}

impl TypedValue {
    pub(crate) fn new<T: Any + Send + Sync>(value: T) -> Self {
        Self {
            value: Value::new(value, true),
            ty: TypeTag::of::<T>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Value, WordCell, empty_words, is_word};

    #[test]
    fn a_word_with_interior_mutability_is_written_through_its_cell() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let value = Value::new(AtomicU64::new(1), false);
        assert!(matches!(value, Value::Word(_)), "stored inline as a word");
        let atomic = value.downcast_ref::<AtomicU64>().unwrap();
        atomic.store(7, Ordering::Relaxed);
        let again = value.downcast_ref::<AtomicU64>().unwrap();
        assert_eq!(again.load(Ordering::Relaxed), 7);
        let taken: AtomicU64 = value.take().ok().unwrap();
        assert_eq!(taken.into_inner(), 7);
    }

    #[test]
    fn word_sized_values_without_drop_glue_are_words() {
        assert!(is_word::<u64>() && is_word::<bool>() && is_word::<(u16, u8)>());
        assert!(is_word::<()>() && is_word::<f64>() && !is_word::<&'static str>());
        assert!(!is_word::<u128>() && !is_word::<String>() && !is_word::<Box<u8>>());
        assert!(matches!(Value::new(7u64, false), Value::Word(_)));
        assert!(matches!(Value::new(7u64, true), Value::Shared(_)));
        assert!(matches!(Value::new(7u128, false), Value::Inline(_)));
    }

    #[test]
    fn a_word_is_read_back_only_as_its_own_type() {
        let value = Value::new(-3i8, false);
        assert_eq!(value.downcast_ref::<i8>(), Some(&-3));
        assert_eq!(value.downcast_ref::<u8>(), None);
        let mut cells = empty_words(3);
        assert!(cells[1].get::<i8>().is_none(), "zeroed cells are empty");
        let Value::Word(word) = value else {
            panic!("an i8 is a word")
        };
        // SAFETY (all): one thread.
        assert!(unsafe { cells[1].set(word) }.is_ok());
        assert_eq!(cells[1].get::<i8>(), Some(&-3));
        assert_eq!(cells[1].get::<u8>(), None, "another type of the same size");
        let Value::Word(again) = Value::new(true, false) else {
            panic!("a bool is a word")
        };
        assert!(
            unsafe { cells[1].set(again) }.is_err(),
            "second write refused"
        );
        cells[1].clear();
        assert!(cells[1].get::<i8>().is_none());
        let Value::Word(unit) = Value::new((), false) else {
            panic!("() is a word")
        };
        assert!(unsafe { cells[1].set(unit) }.is_ok());
        assert_eq!(cells[1].get::<()>(), Some(&()));
        assert_eq!(
            std::mem::size_of::<WordCell>(),
            if cfg!(debug_assertions) { 24 } else { 16 }
        );
    }
}
