//! Cross-crate integration tests of kvmstor; the tests live in `tests/`.
