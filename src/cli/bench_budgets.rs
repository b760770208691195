//! The budgets of ARCHITECTURE.md ("Budgets") as one `simulate bench` run measured them: each suite
//! adds the budgets its configuration measures, and the run ends with one table (figure,
//! measured, target, met, missed or skipped) and, with `--gate`, an exit code that says
//! whether every one measured held.

/// Which side of its target a measured figure must be on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    /// `value >= target`.
    AtLeast(f64),
    /// `value <= target`.
    AtMost(f64),
    /// `value < target`.
    Below(f64),
}

impl Bound {
    fn holds(self, value: f64) -> bool {
        match self {
            Bound::AtLeast(target) => value >= target,
            Bound::AtMost(target) => value <= target,
            Bound::Below(target) => value < target,
        }
    }
}

/// Where a budget stands after the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Met,
    Missed,
    /// Not measured by choice (`--no-peer`): neither met nor missed, but shown, so that a
    /// gate passing without it can be seen to have passed without it.
    Skipped,
}

/// One budget as measured.
#[derive(Clone, Debug, PartialEq)]
struct Budget {
    figure: String,
    /// The figure as printed (`0.82x`, `17.7M events/s`).
    measured: String,
    /// The target as printed (`>= 0.7x`).
    target: String,
    status: Status,
}

/// The budgets a run measured, in the order the suites measured them.
#[derive(Debug, Default)]
pub struct Scorecard {
    budgets: Vec<Budget>,
}

impl Scorecard {
    /// Records `figure`, whose value `value` is shown as `measured`, against `bound`, shown as
    /// `target`.
    pub fn add(
        &mut self,
        figure: impl Into<String>,
        value: f64,
        measured: impl Into<String>,
        bound: Bound,
        target: impl Into<String>,
    ) {
        // A figure that could not be computed (NaN) has not met its budget.
        let held = value.is_finite() && bound.holds(value);
        self.check(figure, held, measured, target);
    }

    /// Records a budget that is a yes-or-no check (a scenario's verdict).
    pub fn check(
        &mut self,
        figure: impl Into<String>,
        held: bool,
        measured: impl Into<String>,
        target: impl Into<String>,
    ) {
        let status = if held { Status::Met } else { Status::Missed };
        self.push(figure.into(), measured.into(), target.into(), status);
    }

    /// Records a budget this run chose not to measure, and why (`--no-peer`).
    pub fn skip(
        &mut self,
        figure: impl Into<String>,
        reason: impl Into<String>,
        target: impl Into<String>,
    ) {
        self.push(figure.into(), reason.into(), target.into(), Status::Skipped);
    }

    fn push(&mut self, figure: String, measured: String, target: String, status: Status) {
        self.budgets.push(Budget {
            figure,
            measured,
            target,
            status,
        });
    }

    /// Whether no budget recorded was missed (true when none was recorded; skipped budgets
    /// are not missed).
    pub fn all_met(&self) -> bool {
        self.budgets.iter().all(|b| b.status != Status::Missed)
    }

    /// The closing table, or a line saying that no budget applies to what was run.
    pub fn render(&self) -> String {
        if self.budgets.is_empty() {
            return "Budgets (ARCHITECTURE.md): none measured by this configuration \
                    (each is judged only in the configuration it is stated for: see \
                    `simulate bench --help`)\n"
                .to_string();
        }
        let width = |column: fn(&Budget) -> &str, header: &str| {
            self.budgets
                .iter()
                .map(|b| column(b).chars().count())
                .chain([header.len()])
                .max()
                .unwrap_or(0)
        };
        let figure_width = width(|b| &b.figure, "budget");
        let measured_width = width(|b| &b.measured, "measured");
        let target_width = width(|b| &b.target, "target");
        let mut out = String::from("Budgets (ARCHITECTURE.md), as measured in this run:\n");
        out.push_str(&format!(
            "  {:<figure_width$}  {:>measured_width$}  {:<target_width$}  status\n",
            "budget", "measured", "target"
        ));
        for b in &self.budgets {
            out.push_str(&format!(
                "  {:<figure_width$}  {:>measured_width$}  {:<target_width$}  {}\n",
                b.figure,
                b.measured,
                b.target,
                match b.status {
                    Status::Met => "met",
                    Status::Missed => "MISSED",
                    Status::Skipped => "skipped",
                }
            ));
        }
        let with_status = |status: Status| -> Vec<&str> {
            self.budgets
                .iter()
                .filter(|b| b.status == status)
                .map(|b| b.figure.as_str())
                .collect()
        };
        let (met, missed, skipped) = (
            with_status(Status::Met).len(),
            with_status(Status::Missed),
            with_status(Status::Skipped),
        );
        out.push_str(&format!("{met} of {} budgets met", met + missed.len()));
        if !missed.is_empty() {
            out.push_str(&format!("; missed: {}", missed.join("; ")));
        }
        if !skipped.is_empty() {
            out.push_str(&format!("; skipped: {}", skipped.join("; ")));
        }
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_table_names_each_budget_and_what_was_missed() {
        let mut card = Scorecard::default();
        card.add(
            "reference vs minimal loop",
            0.82,
            "0.82x",
            Bound::AtLeast(0.7),
            ">= 0.7x",
        );
        card.add(
            "reference vs SimPy",
            76.2,
            "76.2x",
            Bound::AtLeast(100.0),
            ">= 100x",
        );
        card.check("acmedocs verdict", true, "pass", "pass");
        card.skip("peer", "--no-peer", ">= 100x");
        assert!(!card.all_met());
        let table = card.render();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 7, "{table}");
        assert!(
            lines[2].contains("0.82x") && lines[2].ends_with("met"),
            "{table}"
        );
        assert!(lines[3].ends_with("MISSED"), "{table}");
        assert!(lines[4].ends_with("met"), "{table}");
        assert!(lines[5].ends_with("skipped"), "{table}");
        assert_eq!(
            lines[6], "2 of 3 budgets met; missed: reference vs SimPy; skipped: peer",
            "{table}"
        );
        // Columns line up: every row's status starts where the header's does.
        let status_at = lines[1].find("status").unwrap();
        for row in &lines[2..6] {
            let status = &row[status_at..];
            assert!(["met", "MISSED", "skipped"].contains(&status), "{row}");
        }
    }

    #[test]
    fn a_skipped_budget_is_shown_but_not_missed() {
        let mut card = Scorecard::default();
        card.add("loop", 0.8, "0.80x", Bound::AtLeast(0.7), ">= 0.7x");
        card.skip("peer", "--no-peer", ">= 100x");
        assert!(card.all_met());
        assert!(
            card.render()
                .ends_with("1 of 1 budgets met; skipped: peer\n"),
            "{}",
            card.render()
        );
    }

    #[test]
    fn no_budget_is_not_a_failure() {
        let card = Scorecard::default();
        assert!(card.all_met());
        assert!(card.render().contains("none measured"));
    }

    #[test]
    fn a_figure_that_could_not_be_computed_misses_its_budget() {
        let mut card = Scorecard::default();
        card.add("growth", f64::NAN, "NaN", Bound::AtMost(1.5), "<= 1.5x");
        assert!(!card.all_met());
    }

    proptest! {
        /// Each bound holds exactly on its side of the target, the target itself included
        /// or not as its name says.
        #[test]
        fn bounds_hold_on_their_side(value in -1e9f64..1e9, target in -1e9f64..1e9) {
            prop_assert_eq!(Bound::AtLeast(target).holds(value), value >= target);
            prop_assert_eq!(Bound::AtMost(target).holds(value), value <= target);
            prop_assert_eq!(Bound::Below(target).holds(value), value < target);
            prop_assert!(Bound::AtLeast(target).holds(target));
            prop_assert!(Bound::AtMost(target).holds(target));
            prop_assert!(!Bound::Below(target).holds(target));
        }

        /// The run meets its budgets exactly when no row says MISSED.
        #[test]
        fn all_met_agrees_with_the_table(values in prop::collection::vec(0.0f64..2.0, 0..8)) {
            let mut card = Scorecard::default();
            for (i, v) in values.iter().enumerate() {
                card.add(format!("figure {i}"), *v, format!("{v:.2}"), Bound::AtMost(1.0), "<= 1");
            }
            prop_assert_eq!(card.all_met(), !card.render().contains("MISSED"));
            prop_assert_eq!(card.all_met(), values.iter().all(|v| *v <= 1.0));
        }
    }
}
