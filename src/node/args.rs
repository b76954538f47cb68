//! How a node body reaches its dependencies' values.

use std::any::Any;
use std::sync::Arc;

use super::NodeError;
use crate::value::{Value, WordCell, is_word};
use crate::write_once::WriteOnce;

/// Borrowed view of a sync node's dependency values, in declaration order.
pub struct Args<'a> {
    slots: &'a [WriteOnce<Value>],
    words: &'a [WordCell],
    deps: &'a [u32],
}

impl<'a> Args<'a> {
    pub(crate) fn new(
        slots: &'a [WriteOnce<Value>],
        words: &'a [WordCell],
        deps: &'a [u32],
    ) -> Self {
        Self { slots, words, deps }
    }

    /// How many dependency values there are.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.deps.len()
    }

    /// The value of dependency `index`. Types were checked when the graph was built, so the
    /// error arms only fire if a value went missing, which the executor never allows.
    #[inline]
    pub(crate) fn get<T: Any>(&self, index: usize) -> Result<&'a T, NodeError> {
        // Word-sized values are in the dense word cells, unless stored shared (inputs,
        // requested outputs, values async nodes read): then they are in the slots.
        if is_word::<T>()
            && let Some(value) = self
                .deps
                .get(index)
                .and_then(|&slot| self.words.get(slot as usize))
                .and_then(WordCell::get::<T>)
        {
            return Ok(value);
        }
        let value = self.value(index)?;
        value
            .downcast_ref::<T>()
            .ok_or_else(|| wrong_type::<T>(index))
    }

    /// The values of dependencies `start..start + len`, all `T`s, appended to `out`: one
    /// bounds check for the run of slots, and for word-sized values a plain loop over their
    /// cells (fan-ins are the widest dependency lists).
    #[inline]
    pub(crate) fn get_many<T: Any, const N: usize>(
        &self,
        start: usize,
        len: usize,
        out: &mut smallvec::SmallVec<[&'a T; N]>,
    ) -> Result<(), NodeError> {
        let Some(slots) = self.deps.get(start..start + len) else {
            return Err(NodeError::msg(format!(
                "dependencies #{start}..#{} have no value",
                start + len
            )));
        };
        for (i, &slot) in slots.iter().enumerate() {
            let word = if is_word::<T>() {
                self.words.get(slot as usize).and_then(WordCell::get::<T>)
            } else {
                None
            };
            out.push(match word {
                Some(value) => value,
                None => self.get::<T>(start + i)?,
            });
        }
        Ok(())
    }

    fn value(&self, index: usize) -> Result<&'a Value, NodeError> {
        self.deps
            .get(index)
            .and_then(|&slot| self.slots.get(slot as usize))
            .and_then(WriteOnce::get)
            .ok_or_else(|| NodeError::msg(format!("dependency #{index} has no value")))
    }

    /// Shared pointers to every dependency, for an async node's future to own. The plan
    /// makes every producer read by an async node store a shared value.
    pub(crate) fn to_owned_args(&self) -> Result<OwnedArgs, NodeError> {
        let values = (0..self.deps.len())
            .map(|i| {
                self.value(i)?.shared().cloned().ok_or_else(|| {
                    NodeError::msg(format!(
                        "dependency #{i} is not shareable with an async node"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(OwnedArgs { values })
    }
}

/// Owned dependency values for an async node, which outlives the executor's borrow.
pub struct OwnedArgs {
    values: Vec<Arc<dyn Any + Send + Sync>>,
}

impl OwnedArgs {
    pub(crate) fn get<T: Any + Send + Sync>(&self, index: usize) -> Result<Arc<T>, NodeError> {
        let value = self
            .values
            .get(index)
            .ok_or_else(|| NodeError::msg(format!("dependency #{index} has no value")))?;
        Arc::clone(value)
            .downcast::<T>()
            .map_err(|_| wrong_type::<T>(index))
    }
}

fn wrong_type<T>(index: usize) -> NodeError {
    NodeError::msg(format!(
        "dependency #{index} is not a {}",
        std::any::type_name::<T>()
    ))
}
