//! Containing panics of third-party parsers.
//!
//! [`catch`] runs a parser that may panic on hostile input (see its callers)
//! and turns a panic into `None`; the process-wide panic hook asks
//! [`expected`] and stays silent for such contained panics, so a malformed
//! input is logged once, by its caller, as a refusal.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`; a panic inside becomes `None`.
pub fn catch<R>(f: impl FnOnce() -> R) -> Option<R> {
    CONTAINED.with(|c| c.set(true));
    let r = catch_unwind(AssertUnwindSafe(f)).ok();
    CONTAINED.with(|c| c.set(false));
    r
}

/// Whether the panic being reported on this thread is contained by
/// [`catch`].
pub fn expected() -> bool {
    CONTAINED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_contained_panic_is_an_error() {
        let v: Vec<u8> = Vec::new();
        assert!(super::catch(|| v[3]).is_none());
        assert_eq!(super::catch(|| 7), Some(7));
        assert!(!super::expected());
    }
}
