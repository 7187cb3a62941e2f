//! Values that a check made earlier guarantees.
//!
//! The engine reads packets through checked views and `get`, so that no input can make it panic. Where an
//! earlier check already makes the failure impossible (a slice `get` after its length was checked, a view
//! of headers that were validated), the `None` or `Err` branch would be a broken invariant, not bad input.
//! [`Invariant::invariant`] says so: a build with debug assertions (the tests and the fuzz targets) panics
//! there, naming the check that should have held, while a release build still never panics and takes the
//! caller's fallback.

/// A result that an earlier check guarantees to be a value.
pub(crate) trait Invariant<T> {
    /// The value; `None` only when the check named by `why` did not hold, which panics in a build with
    /// debug assertions.
    fn invariant(self, why: &'static str) -> Option<T>;
}

impl<T> Invariant<T> for Option<T> {
    #[inline]
    #[track_caller]
    fn invariant(self, why: &'static str) -> Option<T> {
        debug_assert!(self.is_some(), "broken invariant: {why}");
        self
    }
}

impl<T, E: std::fmt::Debug> Invariant<T> for Result<T, E> {
    #[inline]
    #[track_caller]
    fn invariant(self, why: &'static str) -> Option<T> {
        debug_assert!(
            self.is_ok(),
            "broken invariant: {why} ({:?})",
            self.as_ref().err()
        );
        self.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::Invariant;

    #[test]
    fn a_value_passes_through() {
        assert_eq!(Some(3).invariant("present"), Some(3));
        assert_eq!(Ok::<_, ()>(4).invariant("present"), Some(4));
    }

    #[test]
    #[cfg_attr(
        debug_assertions,
        should_panic(expected = "broken invariant: checked above")
    )]
    fn a_missing_value_panics_only_with_debug_assertions() {
        assert_eq!(None::<u8>.invariant("checked above"), None);
    }

    #[test]
    #[cfg_attr(
        debug_assertions,
        should_panic(expected = "broken invariant: checked above")
    )]
    fn an_error_panics_only_with_debug_assertions() {
        assert_eq!(Err::<u8, _>("short").invariant("checked above"), None);
    }
}
