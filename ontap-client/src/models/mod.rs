//! Typed ONTAP records (pure serde types, no I/O).
