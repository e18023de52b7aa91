//! Step results, the closing summary table, and parsers for test runners' summary lines.

use std::time::{Duration, Instant};

use anyhow::Result;

/// Tests a runner reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) skipped: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

/// How a step ended; test steps carry the counts their runner printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Passed(Option<Counts>),
    Failed(Option<Counts>),
    Skipped(String),
}

struct Step {
    name: String,
    outcome: Outcome,
    duration: Duration,
}

/// Every step's result, in order.
#[derive(Default)]
pub(crate) struct Summary {
    steps: Vec<Step>,
}

impl Summary {
    /// Runs one step, records its outcome and duration, and says whether it passed. An error
    /// from the step is printed and counts as a failure; it never stops the next steps.
    pub(crate) fn record(&mut self, name: &str, step: impl FnOnce() -> Result<Outcome>) -> bool {
        println!("\n==> {name}");
        let started = Instant::now();
        let outcome = match step() {
            Ok(outcome) => outcome,
            Err(err) => {
                eprintln!("xtask: {name}: {err:#}");
                Outcome::Failed(None)
            }
        };
        let passed = matches!(outcome, Outcome::Passed(_));
        self.steps.push(Step {
            name: name.to_owned(),
            outcome,
            duration: started.elapsed(),
        });
        passed
    }

    /// Records a step that did not run, and why.
    pub(crate) fn skipped(&mut self, name: &str, why: &str) {
        self.steps.push(Step {
            name: name.to_owned(),
            outcome: Outcome::Skipped(why.to_owned()),
            duration: Duration::ZERO,
        });
    }

    /// True when no step failed or was skipped.
    pub(crate) fn all_passed(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Passed(_)))
    }

    /// The closing totals: every test a runner reported, plus each step that runs no tests
    /// (fmt, clippy, installs, builds) as one check. A step that failed without reporting any
    /// failed test (a build error, a crash) adds one failure, so a failure is never hidden.
    pub(crate) fn totals(&self) -> Counts {
        let mut total = Counts::default();
        for step in &self.steps {
            match &step.outcome {
                Outcome::Passed(Some(c)) => total.add(*c),
                Outcome::Passed(None) => total.passed += 1,
                Outcome::Failed(Some(c)) => {
                    total.add(*c);
                    if c.failed == 0 {
                        total.failed += 1;
                    }
                }
                Outcome::Failed(None) | Outcome::Skipped(_) => total.failed += 1,
            }
        }
        total
    }

    /// Prints the table, then, as the very last line, `N passed, N failed`.
    pub(crate) fn print(&self) {
        let width = self.steps.iter().map(|s| s.name.len()).max().unwrap_or(4);
        println!(
            "\n{:<width$}  {:<6}  {:>8}  tests",
            "step", "result", "time"
        );
        println!("{}", "-".repeat(width + 36));
        for step in &self.steps {
            let (result, detail) = match &step.outcome {
                Outcome::Passed(c) => ("ok", counts_text(c)),
                Outcome::Failed(c) => ("FAILED", counts_text(c)),
                Outcome::Skipped(why) => ("SKIP", why.clone()),
            };
            println!(
                "{:<width$}  {:<6}  {:>7.1}s  {}",
                step.name,
                result,
                step.duration.as_secs_f64(),
                detail
            );
        }
        let total = self.totals();
        println!(
            "(totals count each test, and each step without tests as one check{})",
            if total.skipped > 0 {
                format!("; {} tests skipped", total.skipped)
            } else {
                String::new()
            }
        );
        println!("{} passed, {} failed", total.passed, total.failed);
    }
}

fn counts_text(counts: &Option<Counts>) -> String {
    match counts {
        Some(c) if c.skipped > 0 => format!(
            "{} passed, {} failed, {} skipped",
            c.passed, c.failed, c.skipped
        ),
        Some(c) => format!("{} passed, {} failed", c.passed, c.failed),
        None => String::new(),
    }
}

/// Sums cargo test's `test result: ok. 3 passed; 1 failed; 2 ignored; ...` lines, one per
/// test binary and doc-test run. `None` when there is no such line at all.
pub(crate) fn parse_cargo_test(stdout: &str) -> Option<Counts> {
    let mut total: Option<Counts> = None;
    for line in stdout.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        let mut counts = Counts::default();
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(number)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = number.parse::<u64>() else {
                continue;
            };
            match label {
                "passed" => counts.passed += n,
                "failed" => counts.failed += n,
                "ignored" => counts.skipped += n,
                _ => {}
            }
        }
        total.get_or_insert_with(Counts::default).add(counts);
    }
    total
}

/// Reads pytest's closing line, `==== 2 failed, 10 passed, 1 skipped in 1.23s ====` (errors
/// count as failures). `None` when no such line was printed.
pub(crate) fn parse_pytest(stdout: &str) -> Option<Counts> {
    for line in stdout.lines().rev() {
        let line = line.trim().trim_matches('=').trim();
        let Some((body, _time)) = line.rsplit_once(" in ") else {
            continue;
        };
        let mut counts = Counts::default();
        let mut recognised = false;
        for part in body.split(", ") {
            let mut words = part.split_whitespace();
            let (Some(number), Some(label), None) = (words.next(), words.next(), words.next())
            else {
                recognised = false;
                break;
            };
            let Ok(n) = number.parse::<u64>() else {
                recognised = false;
                break;
            };
            recognised = true;
            match label {
                "passed" | "xpassed" => counts.passed += n,
                "failed" | "error" | "errors" => counts.failed += n,
                "skipped" | "xfailed" | "deselected" => counts.skipped += n,
                _ => {}
            }
        }
        if recognised {
            return Some(counts);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_test_lines_are_summed() {
        let out = "\
running 2 tests
test a ... ok
test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s

test result: FAILED. 5 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.10s
   Doc-tests x
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        assert_eq!(
            parse_cargo_test(out),
            Some(Counts {
                passed: 7,
                failed: 2,
                skipped: 1
            })
        );
        assert_eq!(parse_cargo_test("error: could not compile `x`"), None);
    }

    #[test]
    fn pytest_closing_line_is_read() {
        let out = "\
tests/python/test_x.py::test_a PASSED
=========== 2 failed, 10 passed, 1 skipped, 1 error in 3.21s ===========
";
        assert_eq!(
            parse_pytest(out),
            Some(Counts {
                passed: 10,
                failed: 3,
                skipped: 1
            })
        );
        assert_eq!(
            parse_pytest("========= 4 passed in 0.12s =========\n"),
            Some(Counts {
                passed: 4,
                failed: 0,
                skipped: 0
            })
        );
        assert_eq!(
            parse_pytest("============ no tests ran in 0.01s ============\n"),
            None
        );
    }

    #[test]
    fn totals_never_hide_a_failed_step() {
        let mut summary = Summary::default();
        summary.record("fmt", || Ok(Outcome::Passed(None)));
        summary.record("unit", || {
            Ok(Outcome::Passed(Some(Counts {
                passed: 12,
                failed: 0,
                skipped: 2,
            })))
        });
        summary.record("build", || anyhow::bail!("compile error"));
        summary.record("pytest", || {
            Ok(Outcome::Failed(Some(Counts {
                passed: 3,
                failed: 0,
                skipped: 0,
            })))
        });
        summary.skipped("after", "prerequisite step failed");
        assert_eq!(
            summary.totals(),
            Counts {
                passed: 16,
                failed: 3,
                skipped: 2
            }
        );
        assert!(!summary.all_passed());
    }
}
