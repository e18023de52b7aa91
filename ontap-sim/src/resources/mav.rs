//! Multi-admin verification (MAV): the global switch, rules and approval requests.
//!
//! Pure rules (rule matching, request states, the 262325 message) live in [`rules`].

/// Pure MAV rules, independent of HTTP and of the record store.
pub(crate) mod rules {
    use crate::resources::san::rules::Violation;

    /// ONTAP's code for "this operation needs an approved MAV request".
    pub(crate) const APPROVAL_REQUIRED: u32 = 262325;

    /// HTTP status of the approval-required error. ONTAP's sources do not show it
    /// **(unverified)**; 403 fits "not permitted yet" and is what the simulator sends.
    pub(crate) const APPROVAL_REQUIRED_STATUS: u16 = 403;

    /// The message ONTAP sends with code 262325.
    pub(crate) fn approval_required_message(index: u64) -> String {
        format!("The security multi-admin-verify request (index {index}) requires approval.")
    }

    /// The approval-required refusal for request `index`.
    pub(crate) fn approval_required(index: u64) -> Violation {
        Violation::with_status(APPROVAL_REQUIRED_STATUS, APPROVAL_REQUIRED, approval_required_message(index))
    }

    /// Reads the request index back out of a 262325 message.
    pub(crate) fn parse_request_index(message: &str) -> Option<u64> {
        let start = message.find("(index ")? + "(index ".len();
        let rest = &message[start..];
        let end = rest.find(')')?;
        rest[..end].trim().parse().ok()
    }

    /// Parses a CLI-style query such as `-vserver vs0 -volume v1` into (field, value) pairs.
    pub(crate) fn parse_query(query: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut words = query.split_whitespace().peekable();
        while let Some(word) = words.next() {
            if let Some(field) = word.strip_prefix('-') {
                let value = match words.peek() {
                    Some(v) if !v.starts_with('-') => words.next().unwrap_or_default().to_owned(),
                    _ => String::new(),
                };
                out.push((field.to_owned(), value));
            }
        }
        out
    }

    fn glob(pattern: &str, value: &str) -> bool {
        match pattern.strip_suffix('*') {
            Some(prefix) => value.starts_with(prefix),
            None => pattern == value,
        }
    }

    /// Does a rule (`operation`, CLI `query`) cover an operation with these CLI arguments?
    /// An empty rule query covers every instance; otherwise every field in it must match.
    pub(crate) fn rule_covers(rule_operation: &str, rule_query: &str, operation: &str, args: &[(&str, &str)]) -> bool {
        if rule_operation != operation {
            return false;
        }
        parse_query(rule_query).iter().all(|(field, pattern)| {
            args.iter()
                .any(|(f, v)| *f == field && glob(pattern, v))
        })
    }

    /// Builds the CLI query ONTAP records on a request: `-vserver vs0 -volume v1`.
    pub(crate) fn format_query(args: &[(&str, &str)]) -> String {
        args.iter()
            .map(|(f, v)| format!("-{f} {v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// States of an approval request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum RequestState {
        /// Waiting for approvers.
        Pending,
        /// Approved; the operation may run once.
        Approved,
        /// Vetoed by an approver.
        Vetoed,
        /// Expired before approval or execution.
        Expired,
        /// The approved operation ran.
        Executed,
    }

    impl RequestState {
        /// Parses the REST value.
        pub(crate) fn parse(s: &str) -> Option<Self> {
            match s {
                "pending" => Some(Self::Pending),
                "approved" => Some(Self::Approved),
                "vetoed" => Some(Self::Vetoed),
                "expired" => Some(Self::Expired),
                "executed" => Some(Self::Executed),
                _ => None,
            }
        }

        /// The REST value.
        pub(crate) fn as_str(self) -> &'static str {
            match self {
                Self::Pending => "pending",
                Self::Approved => "approved",
                Self::Vetoed => "vetoed",
                Self::Expired => "expired",
                Self::Executed => "executed",
            }
        }
    }

    /// ONTAP code for an approval decision the request's state or the user does not allow.
    /// Not documented in the sources **(unverified)**; the simulator uses 262326.
    pub(crate) const INVALID_DECISION: u32 = 262326;

    /// Applies an approver's PATCH of `state` (approved or vetoed) to a request.
    ///
    /// The requester may not approve their own request, as in ONTAP. `pending_approvers` is
    /// decremented on each approval; the request becomes approved when it reaches 0.
    pub(crate) fn decide(
        current: RequestState,
        wanted: RequestState,
        requester: &str,
        approver: &str,
        pending_approvers: u32,
    ) -> Result<(RequestState, u32), Violation> {
        if current != RequestState::Pending {
            return Err(Violation::bad(
                INVALID_DECISION,
                format!("The request is in state \"{}\" and cannot be {}.", current.as_str(), wanted.as_str()),
            )
            .at("state"));
        }
        if requester == approver {
            return Err(Violation::with_status(
                403,
                INVALID_DECISION,
                format!("User \"{approver}\" cannot approve or veto a request they made."),
            ));
        }
        match wanted {
            RequestState::Approved => {
                let left = pending_approvers.saturating_sub(1);
                let state = if left == 0 { RequestState::Approved } else { RequestState::Pending };
                Ok((state, left))
            }
            RequestState::Vetoed => Ok((RequestState::Vetoed, pending_approvers)),
            other => Err(Violation::bad(
                262185,
                format!("Invalid value \"{}\" for field \"state\" (approved, vetoed).", other.as_str()),
            )
            .at("state")),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn message_round_trip() {
            let m = approval_required_message(1);
            assert_eq!(m, "The security multi-admin-verify request (index 1) requires approval.");
            assert_eq!(parse_request_index(&m), Some(1));
            assert_eq!(parse_request_index(&approval_required_message(4711)), Some(4711));
            assert_eq!(parse_request_index("entry doesn't exist"), None);
            let v = approval_required(3);
            assert_eq!((v.status, v.code), (403, 262325));
        }

        #[test]
        fn queries() {
            assert_eq!(
                parse_query("-vserver vs0 -volume v1"),
                vec![("vserver".to_owned(), "vs0".to_owned()), ("volume".to_owned(), "v1".to_owned())]
            );
            assert_eq!(format_query(&[("vserver", "vs0"), ("volume", "v1")]), "-vserver vs0 -volume v1");
            let args = [("vserver", "vs0"), ("volume", "v1")];
            assert!(rule_covers("volume delete", "", "volume delete", &args));
            assert!(rule_covers("volume delete", "-vserver vs0", "volume delete", &args));
            assert!(rule_covers("volume delete", "-vserver vs* -volume v1", "volume delete", &args));
            assert!(!rule_covers("volume delete", "-vserver vs1", "volume delete", &args));
            assert!(!rule_covers("volume snapshot delete", "", "volume delete", &args));
            assert!(!rule_covers("volume delete", "-snapshot s1", "volume delete", &args));
        }

        #[test]
        fn decisions() {
            use RequestState::*;
            assert_eq!(decide(Pending, Approved, "admin", "approver", 1), Ok((Approved, 0)));
            assert_eq!(decide(Pending, Approved, "admin", "approver", 2), Ok((Pending, 1)));
            assert_eq!(decide(Pending, Vetoed, "admin", "approver", 1), Ok((Vetoed, 1)));
            let own = decide(Pending, Approved, "admin", "admin", 1).unwrap_err();
            assert_eq!((own.status, own.code), (403, INVALID_DECISION));
            assert_eq!(decide(Executed, Approved, "admin", "b", 1).unwrap_err().code, INVALID_DECISION);
            assert_eq!(decide(Pending, Executed, "admin", "b", 1).unwrap_err().code, 262185);
        }
    }
}
