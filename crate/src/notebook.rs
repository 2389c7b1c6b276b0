//! What a course notebook needs beyond display: the run profile and its key
//! results.
//!
//! - [`Profile`]: `NNLAB_PROFILE=full` (the course's epochs and data, the
//!   default) or `quick` (subsets and few epochs through the same code path).
//!   A notebook picks its sizes with [`Profile::pick`] (a count: epochs,
//!   samples) and [`Profile::limit`] (a cap on the data in the quick profile):
//!   `let epochs = profile().pick(10, 2);`.
//! - [`key_result`]: prints `★ name: value`, one line the report runner
//!   (`scripts/report`) collects into the index of the HTML reports.
//!
//! ```
//! use nnlab::notebook::{key_result, Profile};
//! let p = Profile::Quick;
//! assert_eq!(p.pick(10, 2), 2);
//! assert_eq!(p.limit(320), Some(320));
//! assert_eq!(Profile::Full.limit(320), None);
//! assert_eq!(key_result("test accuracy", "0.9814"), "★ test accuracy: 0.9814");
//! ```

use std::fmt;

use crate::{Error, Result};

/// How much of the course a run does: `Full` = the original epochs and data,
/// `Quick` = subsets and a few epochs (same code, smaller numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    Full,
    Quick,
}

impl Profile {
    /// Parses `full` or `quick` (any letter case).
    pub fn parse(text: &str) -> Result<Profile> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Profile::Full),
            "quick" => Ok(Profile::Quick),
            other => Err(Error::config(
                "NNLAB_PROFILE",
                format!("expected `full` or `quick`, got `{other}`"),
            )),
        }
    }

    /// `full` in the full profile, `quick` in the quick one: a count (epochs,
    /// samples), so `profile.pick(10, 2)` is a `usize` without a suffix.
    pub fn pick(self, full: usize, quick: usize) -> usize {
        match self {
            Profile::Full => full,
            Profile::Quick => quick,
        }
    }

    /// A cap on the data: none in the full profile (all samples), `quick`
    /// samples in the quick one. `dataset.subset(n, seed)` where it is `Some(n)`.
    pub fn limit(self, quick: usize) -> Option<usize> {
        match self {
            Profile::Full => None,
            Profile::Quick => Some(quick),
        }
    }

    /// True in the quick profile.
    pub fn is_quick(self) -> bool {
        self == Profile::Quick
    }

    /// `"full"` or `"quick"`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Full => "full",
            Profile::Quick => "quick",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Profile::Full => write!(f, "full (эпохи и данные курса)"),
            Profile::Quick => write!(f, "quick (подвыборки и несколько эпох, тот же код)"),
        }
    }
}

/// The profile of this run: `$NNLAB_PROFILE`, `full` when unset.
pub fn profile() -> Result<Profile> {
    match std::env::var("NNLAB_PROFILE") {
        Ok(v) if !v.trim().is_empty() => Profile::parse(&v),
        _ => Ok(Profile::Full),
    }
}

/// Prints and returns `★ name: value`: a key result of the notebook, which
/// the report runner lists in `reports/index.html`.
pub fn key_result(name: &str, value: impl fmt::Display) -> String {
    let line = format!("★ {name}: {value}");
    println!("{line}");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_profiles_and_rejects_others() -> crate::TestResult {
        assert_eq!(Profile::parse("QUICK")?, Profile::Quick);
        assert_eq!(Profile::parse(" full ")?, Profile::Full);
        let e = Profile::parse("fast").unwrap_err().to_string();
        assert!(e.contains("NNLAB_PROFILE") && e.contains("fast"), "{e}");
        assert_eq!(Profile::Full.pick(42, 3), 42);
        assert_eq!(Profile::Quick.name(), "quick");
        Ok(())
    }
}
