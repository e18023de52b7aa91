//! Shared helpers for kvmstor's runnable examples.
