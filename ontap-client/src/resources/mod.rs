//! Per-resource accessors on `Client`.
