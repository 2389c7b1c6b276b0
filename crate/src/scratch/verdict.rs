//! The verdict of a check on a student's code, and how student code is
//! called so that nothing it does kills the kernel.
//!
//! A check prints one line per verdict:
//!
//! ```text
//! ✔ adam(lr=0.1): пройдено / passed — 40 шагов совпадают с эталоном …
//! ✘ adam(lr=0.1): не реализовано / not implemented: напишите шаг Adam …
//! ✘ adam(lr=0.1): ошибка / failed — шаг 1, координата x: ожидалось 4.9, получено 4.968
//! ```
//!
//! [`catch`] runs student code under `std::panic::catch_unwind` with the
//! panic hook silenced for the call (and restored after): a `todo!()` or an
//! index out of bounds becomes a [`Panic`] value — the verdict "not
//! implemented" or "panicked" — instead of a panic message on stderr and a
//! kernel that lost its variables.
//!
//! ```
//! use nnlab::scratch::verdict::{catch, Verdict};
//! let p = catch(|| -> f64 { todo!("write the SGD step") }).unwrap_err();
//! assert!(p.not_implemented && p.message == "write the SGD step");
//! let v = Verdict::from_panic("sgd(lr=0.1)", "step", &p);
//! assert!(v.to_string().contains("не реализовано / not implemented: write the SGD step"));
//! assert_eq!(catch(|| 2 + 2).unwrap(), 4);
//! ```

use crate::display::{MimeBundle, Show};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

/// What a check concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every comparison agreed.
    Passed,
    /// The student's code is still a `todo!()` / `unimplemented!()` stub.
    NotImplemented,
    /// A mismatch, a NaN, a wrong shape, a panic or an error.
    Failed,
}

/// One check's result: what was checked (`adam(lr=0.1)`, `MyLinear`), the
/// outcome and a detail (the first mismatch, or what agreed).
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub what: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl Verdict {
    pub fn passed(what: impl Into<String>, detail: impl Into<String>) -> Verdict {
        Verdict {
            what: what.into(),
            outcome: Outcome::Passed,
            detail: detail.into(),
        }
    }
    pub fn failed(what: impl Into<String>, detail: impl Into<String>) -> Verdict {
        Verdict {
            what: what.into(),
            outcome: Outcome::Failed,
            detail: detail.into(),
        }
    }
    pub fn not_implemented(what: impl Into<String>, detail: impl Into<String>) -> Verdict {
        Verdict {
            what: what.into(),
            outcome: Outcome::NotImplemented,
            detail: detail.into(),
        }
    }
    /// The verdict for a panic inside `method` of the student's code: "not
    /// implemented" for `todo!()` / `unimplemented!()`, else "failed".
    pub fn from_panic(what: impl Into<String>, method: &str, p: &Panic) -> Verdict {
        if p.not_implemented {
            Verdict::not_implemented(what, p.message.clone())
        } else {
            Verdict::failed(what, format!("паника / panic в {method}: {}", p.message))
        }
    }
    pub fn is_passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            Outcome::Passed => write!(f, "✔ {}: пройдено / passed — {}", self.what, self.detail),
            Outcome::NotImplemented => write!(
                f,
                "✘ {}: не реализовано / not implemented: {}",
                self.what, self.detail
            ),
            Outcome::Failed => write!(f, "✘ {}: ошибка / failed — {}", self.what, self.detail),
        }
    }
}

impl Show for Verdict {
    fn bundle(&self) -> MimeBundle {
        MimeBundle::text(self.to_string())
    }
}

/// Several verdicts shown as one output, a line each.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdicts(pub Vec<Verdict>);

impl Verdicts {
    pub fn all_passed(&self) -> bool {
        !self.0.is_empty() && self.0.iter().all(Verdict::is_passed)
    }
}

impl fmt::Display for Verdicts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl Show for Verdicts {
    fn bundle(&self) -> MimeBundle {
        MimeBundle::text(self.to_string())
    }
}

/// A panic caught in student code: its message, and whether it was a
/// `todo!()` / `unimplemented!()` (the message then has the macro's
/// "not yet implemented: " prefix removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Panic {
    pub message: String,
    pub not_implemented: bool,
}

/// The panic hook is process-wide: one silenced call at a time.
static HOOK: Mutex<()> = Mutex::new(());

/// Runs `f`; a panic inside it becomes `Err(Panic)`, with nothing printed.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    let _guard = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(previous);
    result.map_err(|payload| {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(a panic without a message)".to_string());
        for prefix in ["not yet implemented", "not implemented"] {
            if let Some(rest) = text.strip_prefix(prefix) {
                let rest = rest.trim_start_matches(':').trim();
                let message = if rest.is_empty() {
                    prefix.to_string()
                } else {
                    rest.to_string()
                };
                return Panic {
                    message,
                    not_implemented: true,
                };
            }
        }
        Panic {
            message: text,
            not_implemented: false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_values_and_the_hook_comes_back() -> crate::TestResult {
        let p = catch(|| -> u8 { unimplemented!() }).unwrap_err();
        assert_eq!(
            p,
            Panic {
                message: "not implemented".into(),
                not_implemented: true
            }
        );
        let v: Vec<u8> = Vec::new();
        let p = catch(|| v[3]).unwrap_err();
        assert!(
            !p.not_implemented && p.message.contains("index out of bounds"),
            "{p:?}"
        );
        let p = catch(|| -> u8 { panic!("bad {}", 7) }).unwrap_err();
        assert_eq!(p.message, "bad 7");
        // the default hook is back: a later catch still works and a normal value passes
        assert_eq!(catch(|| "ok").map_err(|p| p.message)?, "ok");
        Ok(())
    }

    #[test]
    fn verdict_lines() {
        let v = Verdict::failed("sgd(lr=0.1)", "шаг 1");
        assert_eq!(v.to_string(), "✘ sgd(lr=0.1): ошибка / failed — шаг 1");
        let all = Verdicts(vec![Verdict::passed("a", "ok"), v]);
        assert!(!all.all_passed());
        assert_eq!(all.to_string().lines().count(), 2);
    }
}
