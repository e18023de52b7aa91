//! Validated names and the outcome of a mutation.

use std::fmt;

use crate::error::{Error, NameKind, NameProblem};

fn check(kind: NameKind, name: &str) -> Result<(), Error> {
    let problem = if name.is_empty() {
        Some(NameProblem::Empty)
    } else if name.len() > 255 {
        Some(NameProblem::TooLong)
    } else if name.contains('/') {
        Some(NameProblem::Slash)
    } else if name.chars().any(char::is_control) {
        Some(NameProblem::ControlCharacter)
    } else if name == "." || name == ".." {
        Some(NameProblem::DotName)
    } else {
        None
    };
    match problem {
        Some(problem) => Err(Error::InvalidName {
            kind,
            name: name.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $ty:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// Checks the name: not empty, at most 255 bytes, no `/`, no control characters,
            /// not `.` or `..`.
            pub fn new(name: impl Into<String>) -> Result<Self, Error> {
                let name = name.into();
                check($kind, &name)?;
                Ok($ty(name))
            }

            /// The name as a string.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = Error;
            fn try_from(value: &str) -> Result<Self, Error> {
                $ty::new(value)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(value: String) -> Result<Self, Error> {
                $ty::new(value)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = Error;
            fn from_str(value: &str) -> Result<Self, Error> {
                $ty::new(value)
            }
        }
    };
}

name_type!(
    /// A storage pool name, checked before it reaches libvirt.
    PoolName,
    NameKind::Pool
);
name_type!(
    /// A storage volume name, checked before it reaches libvirt.
    VolumeName,
    NameKind::Volume
);

/// Whether a mutation changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The state was changed.
    Changed,
    /// The state was already as asked; nothing was done.
    Unchanged,
}

impl Outcome {
    /// True for [`Outcome::Changed`].
    pub fn changed(self) -> bool {
        self == Outcome::Changed
    }

    /// `Changed` if either is `Changed`.
    pub fn or(self, other: Outcome) -> Outcome {
        if self.changed() || other.changed() {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(kind: NameKind, name: &str) -> NameProblem {
        let err = match kind {
            NameKind::Volume => VolumeName::new(name).unwrap_err(),
            _ => PoolName::new(name).unwrap_err(),
        };
        match err {
            Error::InvalidName {
                kind: k,
                name: n,
                problem,
            } => {
                assert_eq!(k, kind);
                assert_eq!(n, name);
                problem
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn refuses_bad_names_with_the_reason() {
        assert_eq!(problem(NameKind::Pool, ""), NameProblem::Empty);
        assert_eq!(problem(NameKind::Pool, "a/b"), NameProblem::Slash);
        assert_eq!(
            problem(NameKind::Volume, "disk\n1"),
            NameProblem::ControlCharacter
        );
        assert_eq!(
            problem(NameKind::Volume, "x\u{0}"),
            NameProblem::ControlCharacter
        );
        assert_eq!(problem(NameKind::Volume, ".."), NameProblem::DotName);
        assert_eq!(
            problem(NameKind::Pool, &"p".repeat(256)),
            NameProblem::TooLong
        );
    }

    #[test]
    fn accepts_ordinary_names() {
        assert_eq!(
            PoolName::new("ds-01_nfs.v4").unwrap().as_str(),
            "ds-01_nfs.v4"
        );
        let v: VolumeName = "vm1-disk0.qcow2".parse().unwrap();
        assert_eq!(v.to_string(), "vm1-disk0.qcow2");
    }

    #[test]
    fn outcome_or() {
        assert_eq!(Outcome::Unchanged.or(Outcome::Changed), Outcome::Changed);
        assert_eq!(
            Outcome::Unchanged.or(Outcome::Unchanged),
            Outcome::Unchanged
        );
    }
}
