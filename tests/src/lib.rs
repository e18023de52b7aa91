//! Cross-crate integration tests of kvmstor; the tests live in `tests/`.
//!
//! * `ontap_storage.rs`: cluster, nodes, SVMs, aggregates, IP and FC interfaces, volumes
//!   (FlexVol, FlexGroup, settings, query PATCH/DELETE), snapshots and locks, FlexClones,
//!   file clones, jobs, paging, filters and SVM tunnelling.
//! * `ontap_protocols.rs`: NFS export policies and rules, SMB shares, LUNs, igroups,
//!   initiators and maps, iSCSI services and CHAP, NVMe services, namespaces, subsystems,
//!   hosts and maps, SnapMirror, multi-admin verification.
//! * `ontap_faults.rs`: retries, broken connections, injected ONTAP errors, failing and
//!   expired jobs, timeouts, authentication, TLS trust and the redaction of secrets.
//!
//! Each test starts its own in-process `ontap-sim` over HTTPS (helpers in
//! `tests/common/mod.rs`) and talks to it with `ontap-client`, trusting only the
//! simulator's generated certificate.
