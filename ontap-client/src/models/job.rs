//! Jobs (`/api/cluster/jobs`): the record types live with the job-waiting code in
//! [`crate::job`] and are re-exported here so every record type is found under `models`.

pub use crate::job::{Job, JobError, JobLink, JobState};
