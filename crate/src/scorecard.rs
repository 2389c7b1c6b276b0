//! A notebook's results against the original course: one row per result with
//! our number, the original's number (as its notebook printed it), the
//! target and a verdict.
//!
//! A target is `ours ≥ min`, `ours ≤ max` or `lo ≤ ours ≤ hi`; a row without
//! a target is shown for comparison only. The targets are set for the full
//! profile (the course's data and epochs): in the quick profile the verdict
//! says so ("quick: ✗"), so a table built by a quick run never claims a
//! target.
//!
//! ```
//! use nnlab::notebook::Profile;
//! use nnlab::scorecard::Scorecard;
//! let card = Scorecard::new(Profile::Full)
//!     .at_least("MNIST: test accuracy", 0.981, "0.980", 0.98)
//!     .between("digits: RF accuracy", 0.99, "0.93–0.97", 0.93, 0.97)
//!     .info("время, с", 12.0, "—");
//! assert_eq!(card.missed(), vec!["digits: RF accuracy".to_string()]);
//! assert!(card.summary().starts_with("Цели: 1 из 2 достигнуты"));
//! assert_eq!(card.to_dataframe().unwrap().shape(), (3, 5));
//! ```

use polars::prelude::*;

use crate::display::{table_bundle, MimeBundle, Show};
use crate::notebook::Profile;
use crate::Result;

/// What a row's number must satisfy.
#[derive(Clone, Debug, PartialEq)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
    Between(f64, f64),
    None,
}

impl Target {
    fn met(&self, v: f64) -> Option<bool> {
        match *self {
            Target::AtLeast(min) => Some(v >= min),
            Target::AtMost(max) => Some(v <= max),
            Target::Between(lo, hi) => Some(v >= lo && v <= hi),
            Target::None => None,
        }
    }

    fn text(&self) -> String {
        match *self {
            Target::AtLeast(min) => format!("≥ {min}"),
            Target::AtMost(max) => format!("≤ {max}"),
            Target::Between(lo, hi) => format!("{lo} – {hi}"),
            Target::None => "—".to_string(),
        }
    }
}

#[derive(Clone, Debug)]
struct Row {
    what: String,
    ours: f64,
    original: String,
    target: Target,
}

/// Results of a run against the original's numbers and the course targets.
#[derive(Clone, Debug)]
pub struct Scorecard {
    profile: Profile,
    rows: Vec<Row>,
}

impl Scorecard {
    /// An empty card for a run of `profile`.
    pub fn new(profile: Profile) -> Scorecard {
        Scorecard {
            profile,
            rows: Vec::new(),
        }
    }

    fn row(mut self, what: &str, ours: f64, original: &str, target: Target) -> Scorecard {
        self.rows.push(Row {
            what: what.to_string(),
            ours,
            original: original.to_string(),
            target,
        });
        self
    }

    /// A result whose target is `ours ≥ min`.
    pub fn at_least(self, what: &str, ours: f64, original: &str, min: f64) -> Scorecard {
        self.row(what, ours, original, Target::AtLeast(min))
    }

    /// A result whose target is `ours ≤ max`.
    pub fn at_most(self, what: &str, ours: f64, original: &str, max: f64) -> Scorecard {
        self.row(what, ours, original, Target::AtMost(max))
    }

    /// A result whose target is `lo ≤ ours ≤ hi`.
    pub fn between(self, what: &str, ours: f64, original: &str, lo: f64, hi: f64) -> Scorecard {
        self.row(what, ours, original, Target::Between(lo, hi))
    }

    /// A result shown beside the original's without a target.
    pub fn info(self, what: &str, ours: f64, original: &str) -> Scorecard {
        self.row(what, ours, original, Target::None)
    }

    /// The rows whose target was missed (NaN misses every target).
    pub fn missed(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.target.met(r.ours) == Some(false))
            .map(|r| r.what.clone())
            .collect()
    }

    /// One line: how many targets were met, which were missed, and in the
    /// quick profile that the targets are the full profile's.
    pub fn summary(&self) -> String {
        let with_target = self
            .rows
            .iter()
            .filter(|r| r.target != Target::None)
            .count();
        let missed = self.missed();
        let mut line = format!(
            "Цели: {} из {with_target} достигнуты",
            with_target - missed.len()
        );
        if !missed.is_empty() {
            line.push_str(&format!("; не достигнуты: {}", missed.join("; ")));
        }
        line.push('.');
        if self.profile.is_quick() {
            line.push_str(" Это quick-профиль (подвыборки и несколько эпох): цели поставлены для full и здесь не проверяются.");
        }
        line
    }

    fn verdict(&self, r: &Row) -> String {
        let mark = match r.target.met(r.ours) {
            Some(true) => "✓ достигнута",
            Some(false) => "✗ не достигнута",
            None => "для сравнения",
        };
        if self.profile.is_quick() && r.target != Target::None {
            format!("quick: {mark}")
        } else {
            mark.to_string()
        }
    }

    /// The table: result, nnlab, original, target, verdict.
    pub fn to_dataframe(&self) -> Result<DataFrame> {
        let col = |name: &str, values: Vec<String>| Column::new(name.into(), values);
        let ours: Vec<f64> = self.rows.iter().map(|r| r.ours).collect();
        let df = DataFrame::new(
            self.rows.len(),
            vec![
                col(
                    "результат",
                    self.rows.iter().map(|r| r.what.clone()).collect(),
                ),
                Column::new("nnlab".into(), ours),
                col(
                    "оригинал",
                    self.rows.iter().map(|r| r.original.clone()).collect(),
                ),
                col("цель", self.rows.iter().map(|r| r.target.text()).collect()),
                col(
                    "вердикт",
                    self.rows.iter().map(|r| self.verdict(r)).collect(),
                ),
            ],
        )?;
        Ok(df)
    }

    /// The caption shown above the table.
    pub fn title(&self) -> String {
        format!(
            "Итоги против оригинала ({} профиль): {} строк",
            self.profile.name(),
            self.rows.len()
        )
    }
}

impl Show for Scorecard {
    fn bundle(&self) -> MimeBundle {
        table_bundle(self.to_dataframe(), 60, &self.title())
    }
    fn headline(&self) -> String {
        self.title()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_targets_and_profile() -> Result<()> {
        let full = Scorecard::new(Profile::Full)
            .at_least("a", 0.99, "0.98", 0.98)
            .at_most("b", 0.8, "0.7", 0.715)
            .between("c", 0.95, "0.93–0.97", 0.93, 0.97)
            .at_least("d", f64::NAN, "1.0", 1.0)
            .info("e", 3.0, "—");
        assert_eq!(full.missed(), vec!["b".to_string(), "d".to_string()]);
        assert_eq!(
            full.summary(),
            "Цели: 2 из 4 достигнуты; не достигнуты: b; d."
        );
        let df = full.to_dataframe()?;
        let verdicts: Vec<String> = (0..df.height())
            .map(|i| {
                df.column("вердикт")
                    .ok()
                    .and_then(|c| c.str().ok()?.get(i).map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            verdicts,
            [
                "✓ достигнута",
                "✗ не достигнута",
                "✓ достигнута",
                "✗ не достигнута",
                "для сравнения"
            ]
        );
        let targets: Vec<String> = (0..df.height())
            .map(|i| {
                df.column("цель")
                    .ok()
                    .and_then(|c| c.str().ok()?.get(i).map(String::from))
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(targets, ["≥ 0.98", "≤ 0.715", "0.93 – 0.97", "≥ 1", "—"]);

        let quick = Scorecard::new(Profile::Quick)
            .at_least("a", 0.5, "0.98", 0.98)
            .info("e", 1.0, "—");
        let df = quick.to_dataframe()?;
        assert_eq!(
            df.column("вердикт")?.str()?.get(0),
            Some("quick: ✗ не достигнута")
        );
        assert_eq!(df.column("вердикт")?.str()?.get(1), Some("для сравнения"));
        assert!(quick.summary().contains("quick-профиль"));
        Ok(())
    }
}
