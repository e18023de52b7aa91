//! SnapMirror relationships and transfers.
//!
//! The state machine lives in [`rules`]; the handlers below run each change as a job.

/// Pure SnapMirror rules, independent of HTTP and of the record store.
pub(crate) mod rules {
    use crate::resources::san::rules::Violation;

    /// Relationship states the simulator models (asynchronous policies only).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum RelState {
        /// Created, no baseline transfer yet.
        Uninitialized,
        /// Baseline done; the destination is a read-only mirror.
        Snapmirrored,
        /// Broken: the destination is writable (failover).
        BrokenOff,
        /// Quiesced: transfers suspended.
        Paused,
    }

    impl RelState {
        /// Parses the REST value; states of synchronous policies are not modelled.
        pub(crate) fn parse(s: &str) -> Option<Self> {
            match s {
                "uninitialized" => Some(Self::Uninitialized),
                "snapmirrored" => Some(Self::Snapmirrored),
                "broken_off" => Some(Self::BrokenOff),
                "paused" => Some(Self::Paused),
                _ => None,
            }
        }

        /// The REST value.
        pub(crate) fn as_str(self) -> &'static str {
            match self {
                Self::Uninitialized => "uninitialized",
                Self::Snapmirrored => "snapmirrored",
                Self::BrokenOff => "broken_off",
                Self::Paused => "paused",
            }
        }
    }

    /// What a PATCH of `state` does.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Action {
        /// Baseline transfer (uninitialized → snapmirrored).
        Initialize,
        /// Break (snapmirrored/paused → broken_off); the destination becomes read-write.
        Break,
        /// Resync (broken_off → snapmirrored); the destination becomes a mirror again.
        Resync,
        /// Quiesce (snapmirrored → paused).
        Pause,
        /// Resume (paused → snapmirrored).
        Resume,
        /// Already in the requested state.
        Nothing,
    }

    impl Action {
        /// The `last_transfer_type` a transfer made by this action records, if it transfers.
        pub(crate) fn transfer_type(self) -> Option<&'static str> {
            match self {
                Self::Initialize => Some("initialize"),
                Self::Resync => Some("resync"),
                _ => None,
            }
        }
    }

    /// ONTAP code for a state change the relationship's current state does not allow.
    /// ONTAP's REST docs list no code for this; 13303810 is the simulator's choice
    /// (it sits in the SnapMirror 133038xx range) **(unverified)**.
    pub(crate) const INVALID_TRANSITION: u32 = 13303810;

    /// Plans the change from `from` to `to`, refusing transitions ONTAP refuses.
    pub(crate) fn plan(from: RelState, to: RelState) -> Result<Action, Violation> {
        use RelState::*;
        let action = match (from, to) {
            (a, b) if a == b => Action::Nothing,
            (Uninitialized, Snapmirrored) => Action::Initialize,
            (Snapmirrored | Paused, BrokenOff) => Action::Break,
            (BrokenOff, Snapmirrored) => Action::Resync,
            (Snapmirrored, Paused) => Action::Pause,
            (Paused, Snapmirrored) => Action::Resume,
            _ => {
                return Err(Violation::bad(
                    INVALID_TRANSITION,
                    format!(
                        "Cannot change the state of the relationship from \"{}\" to \"{}\".",
                        from.as_str(),
                        to.as_str()
                    ),
                )
                .at("state"))
            }
        };
        Ok(action)
    }

    /// A `svm:volume` endpoint path.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Endpoint {
        /// SVM name.
        pub svm: String,
        /// Volume name.
        pub volume: String,
    }

    impl Endpoint {
        /// The `svm:volume` form.
        pub(crate) fn path(&self) -> String {
            format!("{}:{}", self.svm, self.volume)
        }
    }

    /// Parses an endpoint path (ONTAP code 13303852 when the `:` is missing).
    pub(crate) fn parse_endpoint(path: &str, field: &'static str) -> Result<Endpoint, Violation> {
        match path.split_once(':') {
            Some((svm, volume)) if !svm.is_empty() && !volume.is_empty() && !volume.contains(':') => Ok(Endpoint {
                svm: svm.to_owned(),
                volume: volume.to_owned(),
            }),
            Some(_) => Err(Violation::bad(262185, format!("Invalid value \"{path}\" for field \"{field}\".")).at(field)),
            None => Err(Violation::bad(13303852, format!("{field} provided does not contain \":\".")).at(field)),
        }
    }

    /// Formats a lag in seconds as an ISO-8601 duration (`PT1H2M3S`, `PT0S`).
    pub(crate) fn iso_duration(secs: u64) -> String {
        let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
        let mut out = String::from("PT");
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if s > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{s}S"));
        }
        out
    }

    /// Name of the snapshot a transfer creates on the source, after ONTAP's
    /// `snapmirror.<dest svm uuid>_<dest volume id>.<timestamp>` pattern, simplified.
    pub(crate) fn transfer_snapshot_name(relationship_uuid: &str, sequence: u64) -> String {
        format!("snapmirror.{relationship_uuid}.{sequence:010}")
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use RelState::*;

        #[test]
        fn valid_transitions() {
            assert_eq!(plan(Uninitialized, Snapmirrored), Ok(Action::Initialize));
            assert_eq!(plan(Snapmirrored, BrokenOff), Ok(Action::Break));
            assert_eq!(plan(Paused, BrokenOff), Ok(Action::Break));
            assert_eq!(plan(BrokenOff, Snapmirrored), Ok(Action::Resync));
            assert_eq!(plan(Snapmirrored, Paused), Ok(Action::Pause));
            assert_eq!(plan(Paused, Snapmirrored), Ok(Action::Resume));
            assert_eq!(plan(BrokenOff, BrokenOff), Ok(Action::Nothing));
            assert_eq!(Action::Initialize.transfer_type(), Some("initialize"));
            assert_eq!(Action::Break.transfer_type(), None);
        }

        #[test]
        fn invalid_transitions() {
            for (a, b) in [
                (Uninitialized, BrokenOff),
                (Uninitialized, Paused),
                (BrokenOff, Paused),
                (Snapmirrored, Uninitialized),
                (BrokenOff, Uninitialized),
            ] {
                let v = plan(a, b).unwrap_err();
                assert_eq!((v.status, v.code, v.target), (400, INVALID_TRANSITION, Some("state")), "{a:?}->{b:?}");
            }
            assert_eq!(
                plan(Uninitialized, BrokenOff).unwrap_err().message,
                "Cannot change the state of the relationship from \"uninitialized\" to \"broken_off\"."
            );
        }

        #[test]
        fn endpoints() {
            let e = parse_endpoint("svm1:vol1", "source.path").unwrap();
            assert_eq!((e.svm.as_str(), e.volume.as_str(), e.path()), ("svm1", "vol1", "svm1:vol1".to_owned()));
            assert_eq!(parse_endpoint("svm1vol1", "destination.path").unwrap_err().code, 13303852);
            assert_eq!(parse_endpoint("svm1:", "destination.path").unwrap_err().code, 262185);
        }

        #[test]
        fn durations() {
            assert_eq!(iso_duration(0), "PT0S");
            assert_eq!(iso_duration(59), "PT59S");
            assert_eq!(iso_duration(3723), "PT1H2M3S");
            assert_eq!(iso_duration(7200), "PT2H");
        }
    }
}
