//! SAN resources: LUNs, initiator groups, LUN maps, iSCSI services and CHAP credentials.
//!
//! The pure rules (serial numbers, LUN ids, initiator names, CHAP checks) sit at the top of this
//! file in [`rules`] and are unit-tested without a server; the HTTP handlers below apply them to
//! the shared record store.
//!
//! Endpoints (all synchronous, 201 on create as in ONTAP 9.7): `/api/storage/luns`,
//! `/api/protocols/san/igroups` (+ `/{uuid}/initiators`), `/api/protocols/san/lun-maps`,
//! `/api/protocols/san/iscsi/services`, `/api/protocols/san/iscsi/credentials`,
//! `/api/protocols/san/fcp/services`. Store collections: [`LUNS`], [`IGROUPS`], [`LUN_MAPS`],
//! `iscsi_services`, [`ISCSI_CREDENTIALS`], [`FCP_SERVICES`]; every change goes through the
//! backend first (`Created`/`Modified`/`Deleted` with these collection names).
//!
//! Semantics worth knowing:
//! - A thick LUN (`space.guarantee.requested=true`) reserves its full `space.size` in its
//!   volume, so the volume must have room; growing charges the difference, deleting
//!   releases it. A thin LUN (ONTAP's REST default) reserves nothing. Shrinking is refused
//!   (5374892). LUNs and namespaces share one path space.
//! - LUN ids: the requested `logical_unit_number` if free in the igroup, else the lowest free
//!   id from 0. The LUN's `status.mapped`/`lun_maps` and the igroup's `lun_maps` follow.
//! - Deleting a mapped LUN or igroup, or removing an initiator of a mapped igroup, needs
//!   `allow_delete_while_mapped=true` (1254197 / 1254213); the maps go with it.
//! - CHAP passwords are accepted on POST/PATCH and checked, but never stored: GET, the state
//!   file, the request log and backend changes only ever carry user names.
//! - HTTP statuses of domain errors are not documented by ONTAP: the simulator answers 409
//!   for "already exists"/"in use" refusals, 404 for missing objects and 400 otherwise.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde_json::{json, Map, Value};

use self::rules::{
    check_credentials, check_igroup_name, check_initiator, check_iscsi_name, check_lun_size,
    choose_lun_id, iscsi_target_name, new_lun_serial, parse_storage_path, AuthType, Chap,
    IgroupProtocol, PathKind, SizeInput, StoragePath, Violation, IGROUP_OS_TYPES, LUN_OS_TYPES,
};
use super::commit::{self, commit_ok, deleted, lookup, modified};
use super::{
    get_handler, get_one, href_ref, json_response, list_handler, list_records, svm_ref, volume_ref,
    ApiError, ApiRequest, ResourceSpec, Sim, Store,
};
use crate::api::{body_at, opt_bool, opt_enum, opt_str, req_str};
use crate::backend::Change;
use crate::jobs::now_timestamp;
use crate::store::{coll, str_at, u64_at};

/// Pure SAN rules, independent of HTTP and of the record store.
pub(crate) mod rules {
    use std::fmt;

    /// An ONTAP refusal: HTTP status, ONTAP error code, message and the offending field.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct Violation {
        /// HTTP status code of the error response.
        pub status: u16,
        /// ONTAP error code (sent as a JSON string).
        pub code: u32,
        /// Human-readable message, worded after ONTAP's.
        pub message: String,
        /// The request field the error is about, when there is one.
        pub target: Option<&'static str>,
    }

    impl Violation {
        /// A 400 "bad input" refusal.
        pub(crate) fn bad(code: u32, message: impl Into<String>) -> Self {
            Self {
                status: 400,
                code,
                message: message.into(),
                target: None,
            }
        }

        /// A refusal with another HTTP status.
        pub(crate) fn with_status(status: u16, code: u32, message: impl Into<String>) -> Self {
            Self {
                status,
                code,
                message: message.into(),
                target: None,
            }
        }

        /// The same refusal, naming the request field it is about.
        pub(crate) fn at(mut self, target: &'static str) -> Self {
            self.target = Some(target);
            self
        }
    }

    impl fmt::Display for Violation {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{} (code {})", self.message, self.code)
        }
    }

    /// Characters seen in real ONTAP LUN serial numbers ("wf0Iq+N4uck3", "wOj4f?W9lOk7",
    /// "81GXn]Sox9wm", "818E-+UyFpwm"): letters, digits and a few punctuation marks.
    pub(crate) const LUN_SERIAL_ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+?$/]";

    /// Length of an ONTAP LUN serial number.
    pub(crate) const LUN_SERIAL_LEN: usize = 12;

    /// NetApp's NAA-6 prefix for LUN WWIDs as Linux shows them (`3` = NAA designator type,
    /// `6` = NAA-6, `00a098` = NetApp's IEEE OUI, then `0`).
    // Used by tests and meant for kernel backends, which give LIO the WWN a host will see.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) const NETAPP_NAA_PREFIX: &str = "3600a0980";

    /// Makes a LUN serial number; `pick(n)` must return a value in `0..n`.
    pub(crate) fn new_lun_serial(mut pick: impl FnMut(usize) -> usize) -> String {
        (0..LUN_SERIAL_LEN)
            .map(|_| char::from(LUN_SERIAL_ALPHABET[pick(LUN_SERIAL_ALPHABET.len())]))
            .collect()
    }

    /// The WWID a Linux host sees for a LUN with this serial: `3600a0980` + hex of the serial bytes.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn naa_wwid(serial: &str) -> String {
        let mut out = String::with_capacity(NETAPP_NAA_PREFIX.len() + serial.len() * 2);
        out.push_str(NETAPP_NAA_PREFIX);
        for byte in serial.bytes() {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// Highest LUN id ONTAP accepts in a LUN map.
    pub(crate) const MAX_LUN_ID: u32 = 4095;

    /// Chooses the LUN id of a new map in an igroup: `requested` if it is free, else the lowest
    /// free id from 0.
    pub(crate) fn choose_lun_id(
        used: impl IntoIterator<Item = u32>,
        requested: Option<u32>,
    ) -> Result<u32, Violation> {
        let used: std::collections::BTreeSet<u32> = used.into_iter().collect();
        match requested {
            Some(id) if id > MAX_LUN_ID => Err(Violation::bad(
                262185,
                format!(
                    "Invalid value \"{id}\" for field \"logical_unit_number\" (<0..{MAX_LUN_ID}>)."
                ),
            )
            .at("logical_unit_number")),
            // ONTAP documents no dedicated code for this in lun-maps POST; 1254324 is its code for
            // "the same logical unit identifier for multiple LUN maps" (igroup initiators POST).
            Some(id) if used.contains(&id) => Err(Violation::with_status(
                409,
                1254324,
                format!("The logical unit number {id} is already in use in the initiator group."),
            )
            .at("logical_unit_number")),
            Some(id) => Ok(id),
            None => (0..=MAX_LUN_ID)
                .find(|id| !used.contains(id))
                .ok_or_else(|| {
                    Violation::with_status(
                        409,
                        1254324,
                        "No free logical unit number in the initiator group.",
                    )
                }),
        }
    }

    /// What a storage path names: a LUN or an NVMe namespace (they share the `/vol/` path space).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum PathKind {
        /// A LUN.
        Lun,
        /// An NVMe namespace.
        Namespace,
    }

    /// A parsed `/vol/<volume>[/<qtree>]/<name>` path.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct StoragePath {
        /// Volume name.
        pub volume: String,
        /// Qtree name, if the object lives in one.
        pub qtree: Option<String>,
        /// Base name of the LUN or namespace.
        pub name: String,
    }

    impl StoragePath {
        /// The full `/vol/...` path.
        pub(crate) fn full(&self) -> String {
            match &self.qtree {
                Some(q) => format!("/vol/{}/{}/{}", self.volume, q, self.name),
                None => format!("/vol/{}/{}", self.volume, self.name),
            }
        }
    }

    fn valid_base_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= 255
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '{' | '}'))
    }

    /// Checks a LUN or namespace base name (ONTAP codes 5374121 / 72089732).
    pub(crate) fn check_base_name(kind: PathKind, name: &str) -> Result<(), Violation> {
        if valid_base_name(name) {
            return Ok(());
        }
        Err(match kind {
            PathKind::Lun => Violation::bad(
                5374121,
                "A LUN name can only contain characters A-Z, a-z, 0-9, \"-\", \".\", \"_\", \"{\" and \"}\".",
            ),
            PathKind::Namespace => Violation::bad(
                72089732,
                "An NVMe namespace name can only contain characters A-Z, a-z, 0-9, \"-\", \".\", \"_\", \"{\" and \"}\".",
            ),
        }
        .at("name"))
    }

    /// Parses `/vol/<volume>[/<qtree>]/<name>` (ONTAP code 5374352 when the shape is wrong).
    pub(crate) fn parse_storage_path(kind: PathKind, path: &str) -> Result<StoragePath, Violation> {
        let invalid = || {
            let what = match kind {
                PathKind::Lun => "LUN",
                PathKind::Namespace => "NVMe namespace",
            };
            Violation::bad(
                5374352,
                format!("An invalid name was provided for the {what}."),
            )
            .at("name")
        };
        let rest = path.strip_prefix("/vol/").ok_or_else(invalid)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let (volume, qtree, name) = match parts.as_slice() {
            [v, n] => (*v, None, *n),
            [v, q, n] => (*v, Some(*q), *n),
            _ => return Err(invalid()),
        };
        if volume.is_empty() || qtree.is_some_and(str::is_empty) {
            return Err(invalid());
        }
        check_base_name(kind, name)?;
        Ok(StoragePath {
            volume: volume.to_owned(),
            qtree: qtree.map(str::to_owned),
            name: name.to_owned(),
        })
    }

    /// Smallest LUN or namespace ONTAP creates, in bytes.
    pub(crate) const MIN_BLOCK_DEVICE_SIZE: u64 = 4096;
    /// Largest LUN or namespace in ONTAP 9.7 (16 TiB), in bytes.
    pub(crate) const MAX_BLOCK_DEVICE_SIZE: u64 = 16 << 40;

    /// Parses a size: a JSON integer, or a string with an optional K/M/G/T/P suffix (powers of
    /// 1024, an optional trailing `B`), as ONTAP accepts in `space.size`.
    pub(crate) fn parse_size(value: &SizeInput<'_>) -> Result<i128, ()> {
        match value {
            SizeInput::Int(n) => Ok(*n),
            SizeInput::Text(s) => {
                let s = s.trim();
                let upper = s.to_ascii_uppercase();
                let body = upper.strip_suffix('B').unwrap_or(&upper);
                let (digits, shift) = match body.chars().last() {
                    Some('K') => (&body[..body.len() - 1], 10),
                    Some('M') => (&body[..body.len() - 1], 20),
                    Some('G') => (&body[..body.len() - 1], 30),
                    Some('T') => (&body[..body.len() - 1], 40),
                    Some('P') => (&body[..body.len() - 1], 50),
                    _ => (body, 0),
                };
                let n: i128 = digits.trim().parse().map_err(|_| ())?;
                n.checked_mul(1i128 << shift).ok_or(())
            }
        }
    }

    /// A size as given in a request body.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum SizeInput<'a> {
        /// A JSON number.
        Int(i128),
        /// A JSON string such as "300G".
        Text(&'a str),
    }

    /// Checks a LUN size against ONTAP's limits (codes 5374123/5374124/5374125/5374130).
    pub(crate) fn check_lun_size(input: &SizeInput<'_>) -> Result<u64, Violation> {
        let size = parse_size(input).map_err(|()| {
            Violation::bad(5374130, "An invalid size value was provided.").at("space.size")
        })?;
        if size < 0 {
            return Err(
                Violation::bad(5374123, "A negative size was provided for the LUN.")
                    .at("space.size"),
            );
        }
        if size < i128::from(MIN_BLOCK_DEVICE_SIZE) {
            return Err(
                Violation::bad(5374124, "The specified size is too small for the LUN.")
                    .at("space.size"),
            );
        }
        if size > i128::from(MAX_BLOCK_DEVICE_SIZE) {
            return Err(
                Violation::bad(5374125, "The specified size is too large for the LUN.")
                    .at("space.size"),
            );
        }
        Ok(size as u64)
    }

    /// LUN `os_type` values ONTAP accepts.
    pub(crate) const LUN_OS_TYPES: &[&str] = &[
        "aix",
        "hpux",
        "hyper_v",
        "linux",
        "netware",
        "openvms",
        "solaris",
        "solaris_efi",
        "vmware",
        "windows",
        "windows_2008",
        "windows_gpt",
        "xen",
    ];

    /// Initiator group `os_type` values ONTAP accepts.
    pub(crate) const IGROUP_OS_TYPES: &[&str] = &[
        "aix", "hpux", "hyper_v", "linux", "netware", "openvms", "solaris", "vmware", "windows",
        "xen",
    ];

    /// Initiator group protocols.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum IgroupProtocol {
        /// Fibre Channel only.
        Fcp,
        /// iSCSI only.
        Iscsi,
        /// Both.
        Mixed,
    }

    impl IgroupProtocol {
        /// Parses the REST value.
        pub(crate) fn parse(s: &str) -> Option<Self> {
            match s {
                "fcp" => Some(Self::Fcp),
                "iscsi" => Some(Self::Iscsi),
                "mixed" => Some(Self::Mixed),
                _ => None,
            }
        }

        /// The REST value.
        pub(crate) fn as_str(self) -> &'static str {
            match self {
                Self::Fcp => "fcp",
                Self::Iscsi => "iscsi",
                Self::Mixed => "mixed",
            }
        }
    }

    /// What kind of name an initiator has.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum InitiatorKind {
        /// iSCSI qualified name (`iqn.yyyy-mm.authority[:string]`).
        Iqn,
        /// iSCSI EUI-64 name (`eui.` + 16 hex digits).
        Eui,
        /// Fibre Channel WWPN (`xx:xx:xx:xx:xx:xx:xx:xx`).
        Wwpn,
    }

    /// Longest initiator name ONTAP accepts (the iSCSI limit).
    pub(crate) const MAX_INITIATOR_LEN: usize = 223;

    fn valid_date(date: &str) -> bool {
        let b = date.as_bytes();
        b.len() == 7
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..].iter().all(u8::is_ascii_digit)
            && matches!(
                &date[5..],
                "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12"
            )
    }

    /// Classifies and validates an iSCSI name (IQN or EUI), with ONTAP's codes.
    pub(crate) fn check_iscsi_name(name: &str) -> Result<InitiatorKind, Violation> {
        if name.len() > MAX_INITIATOR_LEN {
            return Err(Violation::bad(
                5373992,
                format!("The initiator name \"{name}\" is too long."),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("iqn.") {
            if rest.is_empty() {
                return Err(Violation::bad(
                    5373969,
                    "A non-empty qualifier is required after the prefix. An example of a valid IQN is iqn.1995-08.com.example:string.",
                ));
            }
            let (date, authority) = match rest.split_once('.') {
                Some((d, a)) => (d, a),
                None => (rest, ""),
            };
            if !valid_date(date) {
                return Err(Violation::bad(
                    5373971,
                    "The date field is invalid. A valid date field is yyyy-mm. An example of a valid IQN is iqn.1995-08.com.example:string.",
                ));
            }
            let ok = !authority.is_empty()
                && authority.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | ':' | '-')
                });
            if !ok {
                return Err(Violation::bad(
                    5373972,
                    "The naming authority and string fields can contain only the characters a-z, 0-9, ., :, and -.",
                ));
            }
            return Ok(InitiatorKind::Iqn);
        }
        if let Some(hex) = lower.strip_prefix("eui.") {
            if hex.len() != 16 {
                return Err(Violation::bad(
                    5373977,
                    "The EUI-64 identifier field must be exactly 16 hexadecimal digits.",
                ));
            }
            if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Violation::bad(
                    5373978,
                    "The EUI formatted initiator name supplied is invalid. A valid EUI format is eui.XXXXXXXXXXXXXXXX, where X is a hexadecimal digit.",
                ));
            }
            return Ok(InitiatorKind::Eui);
        }
        Err(Violation::bad(
            5373997,
            "The initiator name supplied in invalid. The valid initiator name formats are iqn.1995-08.com.example:string or eui.0123456789abcdef.",
        ))
    }

    /// True for a WWPN written as eight colon-separated hex pairs.
    pub(crate) fn is_wwpn(name: &str) -> bool {
        let parts: Vec<&str> = name.split(':').collect();
        parts.len() == 8
            && parts
                .iter()
                .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
    }

    /// Validates an initiator for an igroup of `protocol` (ONTAP codes 5374038/5374039 and the
    /// IQN/EUI codes).
    pub(crate) fn check_initiator(
        protocol: IgroupProtocol,
        name: &str,
    ) -> Result<InitiatorKind, Violation> {
        let looks_iscsi = {
            let l = name.to_ascii_lowercase();
            l.starts_with("iqn.") || l.starts_with("eui.")
        };
        if is_wwpn(name) {
            return if protocol == IgroupProtocol::Iscsi {
                Err(Violation::bad(
                    5374039,
                    format!("An invalid iSCSI initiator name \"{name}\" was supplied."),
                ))
            } else {
                Ok(InitiatorKind::Wwpn)
            };
        }
        if looks_iscsi {
            let kind = check_iscsi_name(name)?;
            return if protocol == IgroupProtocol::Fcp {
                Err(Violation::bad(
                    5374038,
                    format!("An invalid Fibre Channel WWPN \"{name}\" was supplied."),
                ))
            } else {
                Ok(kind)
            };
        }
        if name.len() > MAX_INITIATOR_LEN {
            return Err(Violation::bad(
                5373992,
                format!("The initiator name \"{name}\" is too long."),
            ));
        }
        Err(Violation::bad(
            5373993,
            format!("The initiator name \"{name}\" did not match any valid format."),
        ))
    }

    /// Checks an igroup name (ONTAP code 5373958): 1..96 characters, no spaces or slashes.
    pub(crate) fn check_igroup_name(name: &str) -> Result<(), Violation> {
        let ok = !name.is_empty()
            && name.len() <= 96
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if ok {
            Ok(())
        } else {
            Err(Violation::bad(
                5373958,
                format!("An invalid initiator group name \"{name}\" was supplied."),
            )
            .at("name"))
        }
    }

    /// The iSCSI target name ONTAP gives an SVM: `iqn.1992-08.com.netapp:sn.<svm uuid hex>:vs.<n>`.
    pub(crate) fn iscsi_target_name(svm_uuid: &str, vserver_id: u32) -> String {
        let hex: String = svm_uuid.chars().filter(|c| *c != '-').collect();
        format!(
            "iqn.1992-08.com.netapp:sn.{}:vs.{vserver_id}",
            hex.to_ascii_lowercase()
        )
    }

    /// The FC target WWNN ONTAP gives an SVM: NetApp's `20:00:00:a0:98` prefix plus the
    /// first three bytes of the SVM UUID.
    pub(crate) fn fcp_target_wwnn(svm_uuid: &str) -> String {
        let hex: String = svm_uuid
            .chars()
            .filter(char::is_ascii_hexdigit)
            .take(6)
            .collect();
        format!(
            "20:00:00:a0:98:{}:{}:{}",
            &hex[0..2],
            &hex[2..4],
            &hex[4..6]
        )
    }

    /// iSCSI authentication types.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum AuthType {
        /// CHAP.
        Chap,
        /// No authentication.
        None,
        /// Deny access.
        Deny,
    }

    impl AuthType {
        /// Parses the REST value.
        pub(crate) fn parse(s: &str) -> Option<Self> {
            match s {
                "chap" => Some(Self::Chap),
                "none" => Some(Self::None),
                "deny" => Some(Self::Deny),
                _ => None,
            }
        }

        /// The REST value.
        pub(crate) fn as_str(self) -> &'static str {
            match self {
                Self::Chap => "chap",
                Self::None => "none",
                Self::Deny => "deny",
            }
        }
    }

    /// CHAP settings after a POST or PATCH was applied; passwords are only compared, never echoed.
    #[derive(Clone, Default, PartialEq, Eq)]
    pub(crate) struct Chap {
        /// Inbound user.
        pub inbound_user: Option<String>,
        /// Inbound password.
        pub inbound_password: Option<String>,
        /// Outbound user.
        pub outbound_user: Option<String>,
        /// Outbound password.
        pub outbound_password: Option<String>,
    }

    impl fmt::Debug for Chap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Chap")
                .field("inbound_user", &self.inbound_user)
                .field(
                    "inbound_password",
                    &self.inbound_password.as_ref().map(|_| "<redacted>"),
                )
                .field("outbound_user", &self.outbound_user)
                .field(
                    "outbound_password",
                    &self.outbound_password.as_ref().map(|_| "<redacted>"),
                )
                .finish()
        }
    }

    impl Chap {
        fn any(&self) -> bool {
            self.inbound_user.is_some()
                || self.inbound_password.is_some()
                || self.outbound_user.is_some()
                || self.outbound_password.is_some()
        }
    }

    fn check_password(password: &str, target: &'static str) -> Result<(), Violation> {
        // ONTAP reads a "0x"-prefixed password as hex, which must have an even digit count.
        if let Some(hex) = password
            .strip_prefix("0x")
            .or_else(|| password.strip_prefix("0X"))
        {
            if hex.is_empty() || hex.len() % 2 != 0 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Violation::bad(
                    5374145,
                    "The iSCSI security password must contain an even number of valid hex digits.",
                )
                .at(target));
            }
        }
        if password.is_empty() {
            return Err(Violation::bad(262185, "The CHAP password must not be empty.").at(target));
        }
        Ok(())
    }

    /// Checks an iSCSI credential's authentication type against its CHAP settings.
    pub(crate) fn check_credentials(auth: AuthType, chap: &Chap) -> Result<(), Violation> {
        if auth != AuthType::Chap {
            if chap.any() {
                return Err(Violation::bad(
                    5374900,
                    "Setting the CHAP authentication properties are not supported with authentication types none or deny.",
                ));
            }
            return Ok(());
        }
        if chap.inbound_user.is_none() || chap.inbound_password.is_none() {
            return Err(Violation::bad(
                5374149,
                "The inbound user and password properties are required for CHAP authentication.",
            ));
        }
        if chap.outbound_user.is_some() && chap.outbound_password.is_none() {
            return Err(Violation::bad(
                5374150,
                "Outbound CHAP authentication requires an outbound password.",
            ));
        }
        if let Some(p) = &chap.inbound_password {
            check_password(p, "chap.inbound.password")?;
        }
        if let Some(p) = &chap.outbound_password {
            check_password(p, "chap.outbound.password")?;
            if chap.inbound_password.as_deref() == Some(p.as_str()) {
                return Err(Violation::bad(
                    5374147,
                    "The CHAP inbound and outbound passwords must be different.",
                ));
            }
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn scripted(values: &[usize]) -> impl FnMut(usize) -> usize + '_ {
            let mut i = 0;
            move |n| {
                let v = values[i % values.len()] % n;
                i += 1;
                v
            }
        }

        #[test]
        fn serial_is_twelve_chars_from_the_ontap_alphabet() {
            let s = new_lun_serial(scripted(&[0, 26, 52, 62, 63, 64, 65, 66, 67, 1, 2, 3]));
            assert_eq!(s, "Aa0-+?$/]BCD");
            assert_eq!(s.len(), LUN_SERIAL_LEN);
            let mut rng = 7usize;
            let s2 = new_lun_serial(|n| {
                rng = rng
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (rng >> 33) % n
            });
            assert_eq!(s2.len(), 12);
            assert!(s2.bytes().all(|b| LUN_SERIAL_ALPHABET.contains(&b)));
        }

        #[test]
        fn real_serials_fit_the_alphabet() {
            for s in [
                "wf0Iq+N4uck3",
                "wOj4f?W9lOk7",
                "81GXn]Sox9wm",
                "818E-+UyFpwm",
            ] {
                assert_eq!(s.len(), LUN_SERIAL_LEN);
                assert!(s.bytes().all(|b| LUN_SERIAL_ALPHABET.contains(&b)), "{s}");
            }
        }

        #[test]
        fn naa_wwid_matches_real_multipath_capture() {
            // multipath -ll captures in shared/samples/multipath-ll_netapp_ontap_real.txt.
            assert_eq!(
                naa_wwid("wOj4f?W9lOk7"),
                "3600a0980774f6a34663f57396c4f6b37"
            );
            assert_eq!(
                naa_wwid("wOj4q+W-Avqs"),
                "3600a0980774f6a34712b572d41767173"
            );
            assert_eq!(
                naa_wwid("81GXn]Sox9wm"),
                "3600a0980383147586e5d536f7839776d"
            );
            assert_eq!(
                naa_wwid("818E-+UyFpwm"),
                "3600a0980383138452d2b55794670776d"
            );
        }

        #[test]
        fn lun_ids_lowest_free_or_requested() {
            assert_eq!(choose_lun_id([], None), Ok(0));
            assert_eq!(choose_lun_id([0, 1, 3], None), Ok(2));
            assert_eq!(choose_lun_id([0, 1, 3], Some(7)), Ok(7));
            let taken = choose_lun_id([0, 1, 3], Some(3)).unwrap_err();
            assert_eq!((taken.status, taken.code), (409, 1254324));
            let big = choose_lun_id([], Some(4096)).unwrap_err();
            assert_eq!(
                (big.status, big.code, big.target),
                (400, 262185, Some("logical_unit_number"))
            );
            assert_eq!(choose_lun_id(0..=4094, None), Ok(4095));
            assert_eq!(choose_lun_id(0..=4095, None).unwrap_err().code, 1254324);
        }

        #[test]
        fn storage_paths() {
            let p = parse_storage_path(PathKind::Lun, "/vol/vol1/lun1").unwrap();
            assert_eq!(
                (p.volume.as_str(), p.qtree.as_deref(), p.name.as_str()),
                ("vol1", None, "lun1")
            );
            assert_eq!(p.full(), "/vol/vol1/lun1");
            let q = parse_storage_path(PathKind::Namespace, "/vol/v/q1/ns{1}").unwrap();
            assert_eq!(
                (q.qtree.as_deref(), q.full().as_str()),
                (Some("q1"), "/vol/v/q1/ns{1}")
            );
            assert_eq!(
                parse_storage_path(PathKind::Lun, "vol1/lun1")
                    .unwrap_err()
                    .code,
                5374352
            );
            assert_eq!(
                parse_storage_path(PathKind::Lun, "/vol/vol1")
                    .unwrap_err()
                    .code,
                5374352
            );
            assert_eq!(
                parse_storage_path(PathKind::Lun, "/vol/a/b/c/d")
                    .unwrap_err()
                    .code,
                5374352
            );
            assert_eq!(
                parse_storage_path(PathKind::Lun, "/vol/vol1/lun 1")
                    .unwrap_err()
                    .code,
                5374121
            );
            assert_eq!(
                parse_storage_path(PathKind::Namespace, "/vol/vol1/n$")
                    .unwrap_err()
                    .code,
                72089732
            );
        }

        #[test]
        fn sizes() {
            assert_eq!(parse_size(&SizeInput::Text("300G")), Ok(322_122_547_200));
            assert_eq!(parse_size(&SizeInput::Text("10GB")), Ok(10_737_418_240));
            assert_eq!(parse_size(&SizeInput::Text("1m")), Ok(1_048_576));
            assert_eq!(parse_size(&SizeInput::Text("4096")), Ok(4096));
            assert_eq!(parse_size(&SizeInput::Text("ten")), Err(()));
            assert_eq!(check_lun_size(&SizeInput::Int(1 << 30)), Ok(1 << 30));
            assert_eq!(
                check_lun_size(&SizeInput::Int(-1)).unwrap_err().code,
                5374123
            );
            assert_eq!(
                check_lun_size(&SizeInput::Int(512)).unwrap_err().code,
                5374124
            );
            assert_eq!(
                check_lun_size(&SizeInput::Text("17T")).unwrap_err().code,
                5374125
            );
            assert_eq!(
                check_lun_size(&SizeInput::Text("x")).unwrap_err().code,
                5374130
            );
        }

        #[test]
        fn initiators() {
            use IgroupProtocol::*;
            assert_eq!(
                check_initiator(Iscsi, "iqn.1994-05.com.redhat:abc123"),
                Ok(InitiatorKind::Iqn)
            );
            assert_eq!(
                check_initiator(Mixed, "eui.0123456789ABCDEF"),
                Ok(InitiatorKind::Eui)
            );
            assert_eq!(
                check_initiator(Fcp, "20:00:00:25:b5:00:00:01"),
                Ok(InitiatorKind::Wwpn)
            );
            assert_eq!(
                check_initiator(Mixed, "20:00:00:25:B5:00:00:01"),
                Ok(InitiatorKind::Wwpn)
            );
            assert_eq!(
                check_initiator(Iscsi, "20:00:00:25:b5:00:00:01")
                    .unwrap_err()
                    .code,
                5374039
            );
            assert_eq!(
                check_initiator(Fcp, "iqn.1994-05.com.redhat:abc")
                    .unwrap_err()
                    .code,
                5374038
            );
            assert_eq!(check_initiator(Iscsi, "iqn.").unwrap_err().code, 5373969);
            assert_eq!(
                check_initiator(Iscsi, "iqn.1994-13.com.redhat:x")
                    .unwrap_err()
                    .code,
                5373971
            );
            assert_eq!(
                check_initiator(Iscsi, "iqn.94-05.com.redhat")
                    .unwrap_err()
                    .code,
                5373971
            );
            assert_eq!(
                check_initiator(Iscsi, "iqn.1994-05.com red")
                    .unwrap_err()
                    .code,
                5373972
            );
            assert_eq!(
                check_initiator(Iscsi, "eui.0123").unwrap_err().code,
                5373977
            );
            assert_eq!(
                check_initiator(Iscsi, "eui.0123456789abcdeg")
                    .unwrap_err()
                    .code,
                5373978
            );
            assert_eq!(check_initiator(Iscsi, "host1").unwrap_err().code, 5373993);
            let long = format!("iqn.1994-05.com.redhat:{}", "a".repeat(220));
            assert_eq!(check_initiator(Iscsi, &long).unwrap_err().code, 5373992);
            assert!(!is_wwpn("20:00:00:25:b5:00:00"));
            assert!(!is_wwpn("20000025b5000001"));
        }

        #[test]
        fn igroup_names() {
            assert_eq!(check_igroup_name("kvm-host_1.a"), Ok(()));
            assert_eq!(check_igroup_name("").unwrap_err().code, 5373958);
            assert_eq!(check_igroup_name("a b").unwrap_err().code, 5373958);
            assert_eq!(
                check_igroup_name(&"x".repeat(97)).unwrap_err().code,
                5373958
            );
        }

        #[test]
        fn target_iqn_matches_the_documented_example() {
            // iscsi_service.py docstring: svm uuid 19d04b8e-94d7-11e8-8370-005056b48fd2, vs.4.
            assert_eq!(
                iscsi_target_name("19d04b8e-94d7-11e8-8370-005056b48fd2", 4),
                "iqn.1992-08.com.netapp:sn.19d04b8e94d711e88370005056b48fd2:vs.4"
            );
        }

        fn chap(iu: Option<&str>, ip: Option<&str>, ou: Option<&str>, op: Option<&str>) -> Chap {
            Chap {
                inbound_user: iu.map(str::to_owned),
                inbound_password: ip.map(str::to_owned),
                outbound_user: ou.map(str::to_owned),
                outbound_password: op.map(str::to_owned),
            }
        }

        #[test]
        fn chap_rules() {
            let ok = chap(
                Some("u"),
                Some("secretpass12"),
                Some("o"),
                Some("othersecret12"),
            );
            assert_eq!(check_credentials(AuthType::Chap, &ok), Ok(()));
            assert_eq!(check_credentials(AuthType::None, &Chap::default()), Ok(()));
            assert_eq!(
                check_credentials(AuthType::Deny, &ok).unwrap_err().code,
                5374900
            );
            assert_eq!(
                check_credentials(AuthType::Chap, &chap(Some("u"), None, None, None))
                    .unwrap_err()
                    .code,
                5374149
            );
            assert_eq!(
                check_credentials(
                    AuthType::Chap,
                    &chap(Some("u"), Some("p1"), Some("o"), None)
                )
                .unwrap_err()
                .code,
                5374150
            );
            assert_eq!(
                check_credentials(
                    AuthType::Chap,
                    &chap(Some("u"), Some("same"), Some("o"), Some("same"))
                )
                .unwrap_err()
                .code,
                5374147
            );
            assert_eq!(
                check_credentials(AuthType::Chap, &chap(Some("u"), Some("0xabc"), None, None))
                    .unwrap_err()
                    .code,
                5374145
            );
            assert_eq!(
                check_credentials(AuthType::Chap, &chap(Some("u"), Some("0xab12"), None, None)),
                Ok(())
            );
        }

        #[test]
        fn chap_debug_redacts_passwords() {
            let c = chap(
                Some("u"),
                Some("topsecret-in"),
                Some("o"),
                Some("topsecret-out"),
            );
            let dbg = format!("{c:?}");
            assert!(!dbg.contains("topsecret"), "{dbg}");
            assert!(dbg.contains("<redacted>"));
        }
    }
}

impl From<Violation> for ApiError {
    fn from(v: Violation) -> Self {
        let e = ApiError::new(v.status, v.code.to_string(), v.message);
        match v.target {
            Some(t) => e.with_target(t),
            None => e,
        }
    }
}

/// Store collection of LUNs.
pub(crate) const LUNS: &str = "luns";
/// Store collection of initiator groups.
pub(crate) const IGROUPS: &str = "igroups";
/// Store collection of LUN maps (key `LUN_UUID/IGROUP_UUID`).
pub(crate) const LUN_MAPS: &str = "lun_maps";
/// The iSCSI service: its collection and the SVM's flag.
const ISCSI_SERVICE: commit::Service = (coll::ISCSI_SERVICES, "iscsi");
/// The FC service: its collection and the SVM's flag.
const FCP_SERVICE: commit::Service = (FCP_SERVICES, "fcp");
/// Store collection of iSCSI credentials (key `SVM_UUID/INITIATOR`).
pub(crate) const ISCSI_CREDENTIALS: &str = "iscsi_credentials";

/// Refusal code when a LUN or namespace does not fit in its volume: the framework's
/// "not enough space" code, as ONTAP's own code is not documented **(unverified)**.
pub(crate) const NO_SPACE: u32 = 917537;

const LUN_SPEC: ResourceSpec = ResourceSpec {
    collection: LUNS,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};
const IGROUP_SPEC: ResourceSpec = ResourceSpec {
    collection: IGROUPS,
    key_param: "uuid",
    identity: &["uuid", "name"],
    svm_scoped: true,
};
const INITIATOR_SPEC: ResourceSpec = ResourceSpec {
    collection: IGROUPS,
    key_param: "name",
    identity: &["name"],
    svm_scoped: false,
};
const LUN_MAP_SPEC: ResourceSpec = ResourceSpec {
    collection: LUN_MAPS,
    key_param: "key",
    identity: &["svm", "lun", "igroup"],
    svm_scoped: true,
};
const ISCSI_SERVICE_SPEC: ResourceSpec = ResourceSpec {
    collection: coll::ISCSI_SERVICES,
    key_param: "svm.uuid",
    identity: &["svm", "target"],
    svm_scoped: true,
};
/// Store collection of FC protocol services (key: SVM UUID).
pub(crate) const FCP_SERVICES: &str = "fcp_services";

const FCP_SERVICE_SPEC: ResourceSpec = ResourceSpec {
    collection: FCP_SERVICES,
    key_param: "svm.uuid",
    identity: &["svm", "target"],
    svm_scoped: true,
};
const CREDENTIALS_SPEC: ResourceSpec = ResourceSpec {
    collection: ISCSI_CREDENTIALS,
    key_param: "key",
    identity: &["svm", "initiator"],
    svm_scoped: true,
};

const LUN_POSTABLE: &[&str] = &[
    "svm",
    "name",
    "location.volume",
    "location.qtree",
    "location.logical_unit",
    "os_type",
    "space.size",
    "space.guarantee.requested",
    "comment",
    "enabled",
];
const LUN_PATCHABLE: &[&str] = &[
    "name",
    "location.logical_unit",
    "space.size",
    "comment",
    "enabled",
];

pub(crate) fn routes() -> Router<Sim> {
    Router::new()
        .route(
            "/api/storage/luns",
            get(list_handler(&LUN_SPEC))
                .post(lun_create)
                .patch(each_selected(&LUN_SPEC, |sim, k, req| {
                    lun_patch(State(sim), Path(k), req)
                }))
                .delete(each_selected(&LUN_SPEC, |sim, k, req| {
                    lun_delete(State(sim), Path(k), req)
                })),
        )
        .route(
            "/api/storage/luns/{uuid}",
            get(get_handler(&LUN_SPEC))
                .patch(lun_patch)
                .delete(lun_delete),
        )
        .route(
            "/api/protocols/san/igroups",
            get(list_handler(&IGROUP_SPEC))
                .post(igroup_create)
                .delete(each_selected(&IGROUP_SPEC, |sim, k, req| {
                    igroup_delete(State(sim), Path(k), req)
                })),
        )
        .route(
            "/api/protocols/san/igroups/{uuid}",
            get(get_handler(&IGROUP_SPEC))
                .patch(igroup_patch)
                .delete(igroup_delete),
        )
        .route(
            "/api/protocols/san/igroups/{uuid}/initiators",
            get(initiator_list).post(initiator_add),
        )
        .route(
            "/api/protocols/san/igroups/{uuid}/initiators/{name}",
            get(initiator_get).delete(initiator_remove),
        )
        .route(
            "/api/protocols/san/lun-maps",
            get(list_handler(&LUN_MAP_SPEC))
                .post(map_create)
                .delete(each_selected(&LUN_MAP_SPEC, |sim, k, req| {
                    let (lun, ig) = k.split_once('/').unwrap_or((k.as_str(), ""));
                    map_delete(State(sim), Path((lun.to_string(), ig.to_string())), req)
                })),
        )
        .route(
            "/api/protocols/san/lun-maps/{lun}/{igroup}",
            get(map_get).delete(map_delete),
        )
        .route(
            "/api/protocols/san/iscsi/services",
            get(list_handler(&ISCSI_SERVICE_SPEC)).post(iscsi_create),
        )
        .route(
            "/api/protocols/san/iscsi/services/{svm}",
            get(iscsi_get).patch(iscsi_patch).delete(iscsi_delete),
        )
        .route(
            "/api/protocols/san/iscsi/credentials",
            get(list_handler(&CREDENTIALS_SPEC)).post(cred_create),
        )
        .route(
            "/api/protocols/san/iscsi/credentials/{svm}/{initiator}",
            get(cred_get).patch(cred_patch).delete(cred_delete),
        )
        .route(
            "/api/protocols/san/fcp/services",
            get(list_handler(&FCP_SERVICE_SPEC)).post(fcp_create),
        )
        .route(
            "/api/protocols/san/fcp/services/{svm}",
            get(fcp_get).patch(fcp_patch).delete(fcp_delete),
        )
}

/// `200 {}`: what ONTAP answers to a synchronous PATCH or DELETE.
pub(crate) fn ok_empty() -> Response {
    json_response(StatusCode::OK, &json!({}))
}

/// A size field as given: number or string; `None` when absent.
pub(crate) fn size_input<'a>(
    body: &'a Map<String, Value>,
    path: &str,
) -> Result<Option<SizeInput<'a>>, ApiError> {
    match body_at(body, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(SizeInput::Text(s))),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Ok(Some(SizeInput::Int(i128::from(i)))),
            (None, Some(u)) => Ok(Some(SizeInput::Int(i128::from(u)))),
            _ => Err(ApiError::invalid_value(path, &n.to_string())),
        },
        Some(v) => Err(ApiError::invalid_value(path, &v.to_string())),
    }
}

/// An enum field that must be present.
pub(crate) fn req_enum(
    body: &Map<String, Value>,
    path: &str,
    allowed: &[&str],
) -> Result<String, ApiError> {
    opt_enum(body, path, allowed)?.ok_or_else(|| ApiError::missing_value(path))
}

/// Finds a record of `coll` by a `{uuid}` or `{name}` reference, within an SVM when given.
pub(crate) fn find_ref<'a>(
    store: &'a Store,
    coll: &str,
    svm_uuid: Option<&str>,
    r: &Value,
) -> Option<(String, &'a Value)> {
    let in_svm = |v: &Value| svm_uuid.is_none_or(|s| str_at(v, "/svm/uuid") == s);
    if let Some(u) = r.get("uuid").and_then(Value::as_str) {
        let v = store.get(coll, u).filter(|v| in_svm(v))?;
        if let Some(n) = r.get("name").and_then(Value::as_str) {
            if str_at(v, "/name") != n {
                return None;
            }
        }
        return Some((u.to_string(), v));
    }
    let n = r.get("name").and_then(Value::as_str)?;
    store
        .find_named(coll, svm_uuid, n, |_| true)
        .map(|(k, v)| (k.clone(), v))
}

/// Is there a LUN or NVMe namespace at `path` in the SVM?
pub(crate) fn block_path_taken(store: &Store, svm_uuid: &str, path: &str) -> bool {
    [LUNS, crate::resources::nvme::NAMESPACES].iter().any(|c| {
        store
            .find_named(c, Some(svm_uuid), path, |_| true)
            .is_some()
    })
}

/// 409 `code` (5374242 for LUNs, 72089725 for namespaces): a LUN or namespace is at the
/// path already.
pub(crate) fn path_taken(code: &str) -> ApiError {
    ApiError::new(
        409,
        code,
        "A LUN or NVMe namespace already exists at the specified path.",
    )
    .with_target("name")
}

/// The `location` of a LUN or namespace at `path` in volume `vuuid`; `base_field`
/// (`logical_unit`, `namespace`) holds the path's last part.
pub(crate) fn block_location(path: &StoragePath, vuuid: &str, base_field: &str) -> Value {
    let mut location = json!({base_field: path.name, "volume": volume_ref(vuuid, &path.volume)});
    if let Some(q) = &path.qtree {
        location["qtree"] = json!({"name": q});
    }
    location
}

/// A serial number no LUN in `s` has, nor any of `taken`.
fn fresh_serial(s: &Store, taken: &[String]) -> String {
    loop {
        let candidate = new_lun_serial(|n| fastrand::usize(..n));
        if s.find(LUNS, |v| v["serial_number"] == candidate.as_str())
            .is_none()
            && !taken.contains(&candidate)
        {
            break candidate;
        }
    }
}

/// Resolves the volume a LUN or namespace is created in, from `name` and/or
/// `location.volume`; checks that both agree. Returns the parsed path and the volume.
pub(crate) fn resolve_location(
    store: &Store,
    svm_uuid: &str,
    body: &Map<String, Value>,
    kind: PathKind,
    base_field: &str,
) -> Result<(StoragePath, String, Value), ApiError> {
    let name = opt_str(body, "name")?;
    let loc_volume = body_at(body, "location.volume").cloned();
    let loc_base = opt_str(body, &format!("location.{base_field}"))?;
    let path = match name {
        Some(n) => {
            let p = parse_storage_path(kind, &n)?;
            if let Some(b) = &loc_base {
                if *b != p.name {
                    return Err(ApiError::new(
                        400,
                        "5374861",
                        format!("The base name specified by \"name\" is not the same as that specified by \"location.{base_field}\"."),
                    ));
                }
            }
            p
        }
        None => {
            let base = loc_base.ok_or_else(|| {
                ApiError::new(400, "5374862", "No path base name was provided.")
                    .with_target(format!("location.{base_field}"))
            })?;
            rules::check_base_name(kind, &base)?;
            let vol = loc_volume.as_ref().ok_or_else(|| {
                let code = match kind {
                    PathKind::Lun => "5374859",
                    PathKind::Namespace => "72090014",
                };
                ApiError::new(400, code, "No volume was specified.").with_target("location.volume")
            })?;
            let vol_name = match vol.get("name").and_then(Value::as_str) {
                Some(n) => n.to_string(),
                None => crate::resources::volumes::resolve_volume(
                    store,
                    Some(svm_uuid),
                    vol,
                    "location.volume",
                )
                .map(|(_, v)| str_at(v, "/name"))?,
            };
            StoragePath {
                volume: vol_name,
                qtree: opt_str(body, "location.qtree.name")?,
                name: base,
            }
        }
    };
    if let Some(vol) = &loc_volume {
        if let Some(n) = vol.get("name").and_then(Value::as_str) {
            if n != path.volume {
                return Err(ApiError::new(
                    400,
                    "5374858",
                    "The volume specified by \"name\" is not the same as that specified by \"location.volume\".",
                ));
            }
        }
    }
    let vref = match &loc_volume {
        Some(v) if v.get("uuid").is_some() => v.clone(),
        _ => json!({"name": path.volume}),
    };
    let (vuuid, vrec) =
        crate::resources::volumes::resolve_volume(store, Some(svm_uuid), &vref, "location.volume")?;
    if str_at(vrec, "/name") != path.volume {
        return Err(ApiError::new(
            400,
            "918236",
            "The specified \"location.volume.uuid\" and \"location.volume.name\" do not refer to the same volume.",
        ));
    }
    Ok((path, vuuid, vrec.clone()))
}

/// Whether a LUN or namespace record has space reserved (`space.guarantee.requested`).
pub(crate) fn is_thick(rec: &Value) -> bool {
    rec.pointer("/space/guarantee/requested") == Some(&Value::Bool(true))
}

/// Bytes a LUN or namespace of `size` holds in its volume: all of it when thick, none
/// when thin.
pub(crate) fn reserved(thick: bool, size: u64) -> u64 {
    if thick {
        size
    } else {
        0
    }
}

/// Applies a PATCH body's `space.size` (checked by `check`) to `after`, a LUN or
/// namespace that is `before`; a smaller size is refused with `shrunk`. Returns by how
/// many bytes the size grew (0 when the body has none).
pub(crate) fn grow_size(
    body: &Map<String, Value>,
    (before, after): (&Value, &mut Value),
    check: fn(&SizeInput<'_>) -> Result<u64, Violation>,
    shrunk: fn() -> ApiError,
) -> Result<i64, ApiError> {
    let old = u64_at(before, "/space/size");
    let Some(s) = size_input(body, "space.size")? else {
        return Ok(0);
    };
    let size = check(&s)?;
    if size < old {
        return Err(shrunk());
    }
    after["space"]["size"] = json!(size);
    Ok((size - old) as i64)
}

/// Checks that `bytes` fit in the volume's available space.
pub(crate) fn check_room(vrec: &Value, bytes: u64, what: &str) -> Result<(), ApiError> {
    let avail = u64_at(vrec, "/space/available");
    if bytes > avail {
        return Err(no_space(vrec, bytes, what));
    }
    Ok(())
}

fn no_space(vrec: &Value, bytes: u64, what: &str) -> ApiError {
    ApiError::new(
        400,
        NO_SPACE.to_string(),
        format!(
            "Not enough space in volume \"{}\" for a {what} of {bytes} bytes ({} bytes available).",
            str_at(vrec, "/name"),
            u64_at(vrec, "/space/available")
        ),
    )
    .with_target("space.size")
}

/// Charges `delta` bytes to a volume under the store lock.
pub(crate) fn charge(
    store: &mut Store,
    vuuid: &str,
    delta: i64,
    what: &str,
) -> Result<(), ApiError> {
    let refusal = store
        .get(coll::VOLUMES, vuuid)
        .map(|v| no_space(v, delta.max(0) as u64, what))
        .unwrap_or_else(ApiError::not_found);
    crate::resources::volumes::charge_volume_space(store, vuuid, delta, refusal)
}

/// The block records `sources` (LUNs or NVMe namespaces of the parent volume, as it is
/// now or as a snapshot holds them) as a new FlexClone `clone` holds them: at the same
/// place in the clone, with a new UUID, unmapped, created now; `fresh` adds what else must
/// be new (a LUN's serial number). ONTAP clones LUNs and namespaces with their volume, but
/// not their maps.
pub(crate) fn cloned_block_records(
    sources: &[Value],
    clone: &Value,
    mut fresh: impl FnMut(&mut Value),
) -> Vec<Value> {
    let clone_name = str_at(clone, "/name");
    let clone_uuid = str_at(clone, "/uuid");
    sources
        .iter()
        .map(|parent| {
            let uuid = uuid::Uuid::new_v4().to_string();
            let mut r = parent.clone();
            let path = StoragePath {
                volume: clone_name.clone(),
                qtree: parent
                    .pointer("/location/qtree/name")
                    .and_then(Value::as_str)
                    .filter(|q| !q.is_empty())
                    .map(str::to_string),
                name: parent
                    .pointer("/location/logical_unit")
                    .or_else(|| parent.pointer("/location/namespace"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            r["uuid"] = json!(uuid);
            r["name"] = json!(path.full());
            r["svm"] = clone["svm"].clone();
            r["location"]["volume"] = volume_ref(&clone_uuid, &clone_name);
            r["create_time"] = json!(now_timestamp());
            r["status"]["mapped"] = json!(false);
            if let Some(obj) = r.as_object_mut() {
                obj.remove("subsystem_map");
            }
            if r.get("lun_maps").is_some() {
                r["lun_maps"] = json!([]);
            }
            let href = str_at(parent, "/_links/self/href");
            let base = href.rsplit_once('/').map_or("", |(b, _)| b);
            r["_links"] = json!({"self": {"href": format!("{base}/{uuid}")}});
            fresh(&mut r);
            r
        })
        .collect()
}

/// [`cloned_block_records`] for LUNs: each gets a serial number no LUN in `s` (nor
/// another of these) has.
pub(crate) fn cloned_luns(s: &Store, sources: &[Value], clone: &Value) -> Vec<Value> {
    let mut taken: Vec<String> = Vec::new();
    cloned_block_records(sources, clone, |r| {
        let serial = fresh_serial(s, &taken);
        r["serial_number"] = json!(serial);
        taken.push(serial);
    })
}

fn lun_not_found() -> ApiError {
    ApiError::new(404, "5374875", "The specified LUN was not found.")
}

fn igroup_not_found() -> ApiError {
    ApiError::new(404, "5374852", "The initiator group does not exist.")
}

/// Finds a record by key, honouring the SVM tunnel headers.
pub(crate) fn visible(
    store: &Store,
    req: &ApiRequest,
    coll: &str,
    key: &str,
) -> Result<Option<Value>, ApiError> {
    let tunnel = req.tunnel_svm(store)?;
    Ok(store
        .get(coll, key)
        .filter(|v| {
            tunnel
                .as_ref()
                .is_none_or(|(u, _)| str_at(v, "/svm/uuid") == *u)
        })
        .cloned())
}

/// Query PATCH/DELETE on a synchronous collection (`DELETE /api/storage/luns?name=/vol/v/*`):
/// runs `one` on every selected record in key order, stopping at the first error (as ONTAP
/// does without `continue_on_failure`), then answers `200 {"num_records":N}`.
pub(crate) async fn for_each_selected<F, Fut>(
    sim: &Sim,
    req: ApiRequest,
    spec: &ResourceSpec,
    one: F,
) -> Result<Response, ApiError>
where
    F: Fn(Sim, String, ApiRequest) -> Fut,
    Fut: std::future::Future<Output = Result<Response, ApiError>>,
{
    let targets = super::select_for_query(sim, &req, spec, |_| true)?;
    let n = targets.len();
    for (key, _) in targets {
        one(sim.clone(), key, req.clone()).await?;
    }
    Ok(super::sync_query_done(&req, n))
}

/// The handler of a query PATCH or DELETE on a synchronous collection:
/// [`for_each_selected`] with `one` (usually the instance handler, given the key).
pub(crate) fn each_selected<F, Fut>(
    spec: &'static ResourceSpec,
    one: F,
) -> impl Fn(State<Sim>, ApiRequest) -> BoxedAnswer + Clone + Send + Sync + 'static
where
    F: Fn(Sim, String, ApiRequest) -> Fut + Copy + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response, ApiError>> + Send + 'static,
{
    move |State(sim): State<Sim>, req: ApiRequest| {
        Box::pin(async move { for_each_selected(&sim, req, spec, one).await })
    }
}

/// The answer of a handler that waits, boxed so that a function can return the handler.
pub(crate) type BoxedAnswer =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, ApiError>> + Send>>;

/// Whether the request's query sets `flag` (`allow_delete_while_mapped`, ...); absent is no.
pub(crate) fn allows(req: &ApiRequest, flag: &str) -> Result<bool, ApiError> {
    Ok(req.query.flag(flag)?.unwrap_or(false))
}

/// Asks multi-admin verification about the deletion of `rec` (a LUN, igroup, namespace,
/// subsystem) by `operation`: its SVM as `vserver`, its name as `name_arg`.
pub(crate) fn guard_delete(
    sim: &Sim,
    operation: &str,
    rec: &Value,
    name_arg: &str,
) -> Result<(), ApiError> {
    let (vserver, name) = (str_at(rec, "/svm/name"), str_at(rec, "/name"));
    crate::resources::mav::guard(sim, operation, &[("vserver", &vserver), (name_arg, &name)])
}

/// Realises a change in the backend; refusals become API errors.
pub(crate) async fn realise(sim: &Sim, change: Change) -> Result<(), ApiError> {
    sim.realise(change).await.map_err(ApiError::from)
}

// ---------------------------------------------------------------- LUNs

/// The LUN record a create body asks for, validated against the store (`req` carries
/// this record's body).
fn lun_prepare(s: &Store, req: &ApiRequest) -> Result<Value, ApiError> {
    req.check_fields(LUN_POSTABLE)?;
    let body = req.body_obj();
    let os_type = req_enum(&body, "os_type", LUN_OS_TYPES)?;
    let size = match size_input(&body, "space.size")? {
        Some(s) => check_lun_size(&s)?,
        None => return Err(ApiError::missing_value("space.size")),
    };
    let thick = opt_bool(&body, "space.guarantee.requested")?.unwrap_or(false);
    let comment = opt_str(&body, "comment")?.unwrap_or_default();
    let enabled = opt_bool(&body, "enabled")?.unwrap_or(true);
    let uuid = uuid::Uuid::new_v4().to_string();
    {
        let (svm_uuid, svm_name) = req.create_svm(s)?;
        let (path, vuuid, vrec) =
            resolve_location(s, &svm_uuid, &body, PathKind::Lun, "logical_unit")?;
        if vrec["type"] == "ls" {
            return Err(ApiError::new(
                400,
                "5374129",
                "LUNs cannot be created on a load sharing mirror volume.",
            ));
        }
        if block_path_taken(s, &svm_uuid, &path.full()) {
            return Err(path_taken("5374242"));
        }
        check_room(&vrec, reserved(thick, size), "LUN")?;
        let serial = fresh_serial(s, &[]);
        let location = block_location(&path, &vuuid, "logical_unit");
        Ok(json!({
            "uuid": uuid,
            "name": path.full(),
            "svm": svm_ref(&svm_uuid, &svm_name),
            "location": location,
            "class": "regular",
            "enabled": enabled,
            "os_type": os_type,
            "serial_number": serial,
            "comment": comment,
            "create_time": now_timestamp(),
            "space": {"size": size, "used": 0,
                      "guarantee": {"requested": thick, "reserved": thick},
                      "scsi_thin_provisioning_support_enabled": false},
            "status": {"state": "online", "container_state": "online", "read_only": false,
                       "mapped": false},
            "lun_maps": [],
            "_links": {"self": {"href": format!("/api/storage/luns/{uuid}")}},
        }))
    }
}

/// Realises and inserts a prepared LUN, charging its reservation to the volume.
async fn lun_commit(sim: &Sim, record: &Value) -> Result<(), ApiError> {
    commit::commit_block(sim, LUNS, record, "5374242", "LUN").await
}

/// Takes back a LUN a failed bulk job made (best effort: the job reports the original
/// failure either way).
async fn lun_uncommit(sim: &Sim, record: &Value) {
    let held = reserved(is_thick(record), u64_at(record, "/space/size"));
    let _ = commit::commit(sim, [deleted(LUNS, record)], |s| {
        s.remove(LUNS, &str_at(record, "/uuid"));
        let _ = charge(
            s,
            &str_at(record, "/location/volume/uuid"),
            -(held as i64),
            "LUN",
        );
        Ok(())
    })
    .await;
}

/// POST: synchronous (201) as in the 9.7 spec; a `records` body is ONTAP's bulk
/// create and always answers 202 with one job (9.19: "wrap individual POST requests
/// in a `records` array to force the operation to be asynchronous").
async fn lun_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    if let Some(bodies) = super::bulk_records(&req)? {
        return lun_bulk_create(&sim, &req, bodies).await;
    }
    let record = sim.read(|s| lun_prepare(s, &req))?;
    lun_commit(&sim, &record).await?;
    let uuid = str_at(&record, "/uuid");
    Ok(super::created(
        &req,
        &record,
        &format!("/api/storage/luns/{uuid}"),
    ))
}

/// Every record validated first (any error answers the request), then one job commits
/// them in order; when one fails, the LUNs already made are taken back and the job fails
/// with that error.
async fn lun_bulk_create(
    sim: &Sim,
    req: &ApiRequest,
    bodies: Vec<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let records = sim.read(|s| {
        let mut out: Vec<Value> = Vec::with_capacity(bodies.len());
        for body in bodies {
            let rec = lun_prepare(s, &req.for_record(body))?;
            if out
                .iter()
                .any(|r| r["svm"]["uuid"] == rec["svm"]["uuid"] && r["name"] == rec["name"])
            {
                return Err(path_taken("5374242"));
            }
            out.push(rec);
        }
        Ok::<_, ApiError>(out)
    })?;
    let svm = records.first().map(|r| r["svm"].clone());
    let echoes: Vec<Value> = records
        .iter()
        .map(|r| {
            json!({"uuid": r["uuid"], "name": r["name"],
                        "svm": {"name": r["svm"]["name"], "uuid": r["svm"]["uuid"]}})
        })
        .collect();
    let work_sim = sim.clone();
    let ticket = sim.spawn_job(super::job_description(req), svm, async move {
        let mut done: Vec<&Value> = Vec::new();
        for rec in &records {
            if let Err(e) = lun_commit(&work_sim, rec).await {
                for made in done.into_iter().rev() {
                    lun_uncommit(&work_sim, made).await;
                }
                return Err(crate::error::JobFailure::from(e));
            }
            done.push(rec);
        }
        Ok(())
    });
    super::job_accepted(sim, req, ticket, None, Some(echoes)).await
}

async fn lun_patch(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(LUN_PATCHABLE)?;
    let body = req.body_obj();
    let before = lookup(&sim, &req, LUNS, &uuid, lun_not_found)?;
    let mut after = before.clone();
    let svm_uuid = str_at(&before, "/svm/uuid");
    let grown = grow_size(&body, (&before, &mut after), check_lun_size, || {
        ApiError::new(
            400,
            "5374892",
            "An attempt was made to reduce the size of a LUN.",
        )
        .with_target("space.size")
    })?;
    let new_base = match (
        opt_str(&body, "name")?,
        opt_str(&body, "location.logical_unit")?,
    ) {
        (Some(n), base) => {
            let p = parse_storage_path(PathKind::Lun, &n)?;
            if p.volume != str_at(&before, "/location/volume/name") {
                return Err(ApiError::new(400, "5374858", "The volume specified by \"name\" is not the same as that specified by \"location.volume\".").with_target("name"));
            }
            if base.is_some_and(|b| b != p.name) {
                return Err(ApiError::new(400, "5374861", "The LUN base name specified by \"name\" is not the same as that specified by \"location.logical_unit\"."));
            }
            Some(p)
        }
        (None, Some(base)) => {
            rules::check_base_name(PathKind::Lun, &base)?;
            Some(StoragePath {
                volume: str_at(&before, "/location/volume/name"),
                qtree: before
                    .pointer("/location/qtree/name")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                name: base,
            })
        }
        (None, None) => None,
    };
    if let Some(p) = &new_base {
        let full = p.full();
        if full != str_at(&before, "/name") {
            if sim.read(|s| block_path_taken(s, &svm_uuid, &full)) {
                return Err(path_taken("5374242"));
            }
            after["name"] = json!(full);
            after["location"]["logical_unit"] = json!(p.name);
        }
    }
    if let Some(c) = opt_str(&body, "comment")? {
        after["comment"] = json!(c);
    }
    if let Some(e) = opt_bool(&body, "enabled")? {
        after["enabled"] = json!(e);
    }
    let old_name = str_at(&before, "/name");
    let records = (before, after);
    commit::patch_block(&sim, (LUNS, &uuid), records, grown, "LUN", |s, after| {
        let new_name = str_at(after, "/name");
        if new_name != old_name {
            rename_in_maps(s, &uuid, &new_name);
        }
        // Keep lun_maps as the store has them now (maps may have changed meanwhile).
        if let Some(cur) = s.get(LUNS, &uuid) {
            after["lun_maps"] = cur["lun_maps"].clone();
            after["status"]["mapped"] = cur["status"]["mapped"].clone();
        }
    })
    .await
}

fn rename_in_maps(s: &mut Store, lun_uuid: &str, new_name: &str) {
    let keys: Vec<String> = s
        .iter(LUN_MAPS)
        .filter(|(_, m)| str_at(m, "/lun/uuid") == lun_uuid)
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        let ig = if let Some(m) = s.get_mut(LUN_MAPS, &k) {
            m["lun"]["name"] = json!(new_name);
            str_at(m, "/igroup/uuid")
        } else {
            continue;
        };
        if let Some(g) = s.get_mut(IGROUPS, &ig) {
            if let Some(arr) = g["lun_maps"].as_array_mut() {
                for e in arr
                    .iter_mut()
                    .filter(|e| str_at(e, "/lun/uuid") == lun_uuid)
                {
                    e["lun"]["name"] = json!(new_name);
                }
            }
        }
    }
}

async fn lun_delete(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, LUNS, &uuid, lun_not_found)?;
    let allow = allows(&req, "allow_delete_while_mapped")?;
    let maps = commit::maps_of(&sim, LUN_MAPS, ("/lun/uuid", &uuid));
    if !maps.is_empty() && !allow {
        return Err(ApiError::new(409, "1254197", "The LUN is mapped and cannot be deleted without specifying the \"allow_delete_while_mapped\" query parameter."));
    }
    guard_delete(&sim, "lun delete", &rec, "path")?;
    commit::delete_block(&sim, (LUN_MAPS, &maps), LUNS, &rec, "LUN", |s, m| {
        unmap_in_store(s, &str_at(m, "/lun/uuid"), &str_at(m, "/igroup/uuid"));
    })
    .await
}

// ---------------------------------------------------------------- igroups

fn protocol_of(rec: &Value) -> IgroupProtocol {
    rec["protocol"]
        .as_str()
        .and_then(IgroupProtocol::parse)
        .unwrap_or(IgroupProtocol::Mixed)
}

/// The initiator names in a body: `initiators[{name}]` (igroup POST) or `records[{name}]`.
fn initiator_entries(arr: &Value, field: &str) -> Result<Vec<(String, Option<String>)>, ApiError> {
    let items = arr
        .as_array()
        .ok_or_else(|| ApiError::invalid_value(field, &arr.to_string()))?;
    items
        .iter()
        .map(|i| {
            let name = match i {
                Value::String(s) => s.clone(),
                _ => i
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| ApiError::missing_value(&format!("{field}.name")))?,
            };
            let comment = i.get("comment").and_then(Value::as_str).map(str::to_string);
            Ok((name, comment))
        })
        .collect()
}

/// The igroup an initiator check is about.
#[derive(Clone, Copy)]
struct IgroupCtx<'a> {
    svm_uuid: &'a str,
    igroup_uuid: &'a str,
    protocol: IgroupProtocol,
    os_type: &'a str,
}

/// Validates initiators for an igroup: format, duplicates, and conflicting OS types with
/// other igroups of the SVM (`conflict_code`: 5374732 on POST, 5374734 on initiator add).
fn check_new_initiators(
    store: &Store,
    ig: &IgroupCtx<'_>,
    existing: &[String],
    new: &[(String, Option<String>)],
    conflict_code: &str,
) -> Result<(), ApiError> {
    let IgroupCtx {
        svm_uuid,
        igroup_uuid,
        protocol,
        os_type,
    } = *ig;
    let mut seen: Vec<String> = existing.iter().map(|s| s.to_ascii_lowercase()).collect();
    for (name, _) in new {
        check_initiator(protocol, name)?;
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(ApiError::new(
                409,
                "5374035",
                format!("The initiator \"{name}\" is already in the initiator group."),
            ));
        }
        seen.push(lower.clone());
        let clash = store.find(IGROUPS, |g| {
            str_at(g, "/svm/uuid") == svm_uuid
                && str_at(g, "/uuid") != igroup_uuid
                && g["os_type"] != os_type
                && initiator_names(g)
                    .iter()
                    .any(|n| n.to_ascii_lowercase() == lower)
        });
        if let Some((_, g)) = clash {
            return Err(ApiError::new(
                409,
                conflict_code,
                format!(
                    "The initiator \"{name}\" is already in initiator group \"{}\" with a conflicting operating system type (\"{}\").",
                    str_at(g, "/name"),
                    str_at(g, "/os_type")
                ),
            ));
        }
    }
    Ok(())
}

/// [`check_new_initiators`] for the stored igroup `ig`, as if its OS type were `os_type`.
fn check_igroup_initiators(
    sim: &Sim,
    ig: &Value,
    os_type: &str,
    (existing, new): (&[String], &[(String, Option<String>)]),
    conflict_code: &str,
) -> Result<(), ApiError> {
    let (svm_uuid, igroup_uuid) = (str_at(ig, "/svm/uuid"), str_at(ig, "/uuid"));
    let ctx = IgroupCtx {
        svm_uuid: &svm_uuid,
        igroup_uuid: &igroup_uuid,
        protocol: protocol_of(ig),
        os_type,
    };
    sim.read(|s| check_new_initiators(s, &ctx, existing, new, conflict_code))
}

fn initiator_names(g: &Value) -> Vec<String> {
    g["initiators"]
        .as_array()
        .map(|a| a.iter().map(|i| str_at(i, "/name")).collect())
        .unwrap_or_default()
}

fn initiator_record(igroup_uuid: &str, name: &str, comment: Option<&str>) -> Value {
    let mut v = json!({
        "name": name,
        "_links": {"self": {"href": format!("/api/protocols/san/igroups/{igroup_uuid}/initiators/{name}")}},
    });
    if let Some(c) = comment {
        v["comment"] = json!(c);
    }
    v
}

async fn igroup_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "svm",
        "name",
        "os_type",
        "protocol",
        "initiators",
        "comment",
        "delete_on_unmap",
    ])?;
    let body = req.body_obj();
    let name = req_str(&body, "name")?;
    check_igroup_name(&name)?;
    let os_type = req_enum(&body, "os_type", IGROUP_OS_TYPES)?;
    let protocol = opt_enum(&body, "protocol", &["fcp", "iscsi", "mixed"])?
        .and_then(|p| IgroupProtocol::parse(&p))
        .unwrap_or(IgroupProtocol::Mixed);
    let initiators = match body.get("initiators") {
        Some(v) => initiator_entries(v, "initiators")?,
        None => Vec::new(),
    };
    let comment = opt_str(&body, "comment")?;
    let delete_on_unmap = opt_bool(&body, "delete_on_unmap")?.unwrap_or(false);
    let uuid = uuid::Uuid::new_v4().to_string();
    let check = |s: &Store| -> Result<(String, String), ApiError> {
        let (svm_uuid, svm_name) = req.create_svm(s)?;
        if s.find_named(IGROUPS, Some(&svm_uuid), &name, |_| true)
            .is_some()
        {
            return Err(ApiError::new(
                409,
                "5374023",
                format!(
                    "An initiator group named \"{name}\" already exists in SVM \"{svm_name}\"."
                ),
            )
            .with_target("name"));
        }
        check_new_initiators(
            s,
            &IgroupCtx {
                svm_uuid: &svm_uuid,
                igroup_uuid: &uuid,
                protocol,
                os_type: &os_type,
            },
            &[],
            &initiators,
            "5374732",
        )?;
        Ok((svm_uuid, svm_name))
    };
    let (svm_uuid, svm_name) = sim.read(check)?;
    let mut record = json!({
        "uuid": uuid,
        "name": name,
        "svm": svm_ref(&svm_uuid, &svm_name),
        "os_type": os_type,
        "protocol": protocol.as_str(),
        "initiators": initiators.iter().map(|(n, c)| initiator_record(&uuid, n, c.as_deref())).collect::<Vec<_>>(),
        "delete_on_unmap": delete_on_unmap,
        "lun_maps": [],
        "_links": {"self": {"href": format!("/api/protocols/san/igroups/{uuid}")}},
    });
    if let Some(c) = comment {
        record["comment"] = json!(c);
    }
    commit::create(&sim, &req, (IGROUPS, &uuid), &record, |s| {
        check(s).map(drop)
    })
    .await
}

async fn igroup_patch(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["name", "os_type", "comment", "delete_on_unmap"])?;
    let body = req.body_obj();
    let before = lookup(&sim, &req, IGROUPS, &uuid, igroup_not_found)?;
    let svm_uuid = str_at(&before, "/svm/uuid");
    let mut after = before.clone();
    if let Some(n) = opt_str(&body, "name")? {
        check_igroup_name(&n)?;
        if n != str_at(&before, "/name")
            && sim.read(|s| {
                s.find_named(IGROUPS, Some(&svm_uuid), &n, |_| true)
                    .is_some()
            })
        {
            return Err(ApiError::new(409, "5374023", format!("A rename operation failed because an initiator group named \"{n}\" already exists.")).with_target("name"));
        }
        after["name"] = json!(n);
    }
    if let Some(os) = opt_enum(&body, "os_type", IGROUP_OS_TYPES)? {
        let names: Vec<(String, Option<String>)> = initiator_names(&before)
            .into_iter()
            .map(|n| (n, None))
            .collect();
        check_igroup_initiators(&sim, &before, &os, (&[], &names), "5374733")?;
        after["os_type"] = json!(os);
    }
    if let Some(c) = opt_str(&body, "comment")? {
        after["comment"] = json!(c);
    }
    if let Some(d) = opt_bool(&body, "delete_on_unmap")? {
        after["delete_on_unmap"] = json!(d);
    }
    commit_ok(&sim, [modified(IGROUPS, before.clone(), &after)], |s| {
        let new_name = str_at(&after, "/name");
        if let Some(cur) = s.get(IGROUPS, &uuid) {
            after["lun_maps"] = cur["lun_maps"].clone();
            after["initiators"] = cur["initiators"].clone();
        }
        s.insert(IGROUPS, &uuid, after);
        // Keep the igroup name in maps and LUNs readable after a rename.
        let keys: Vec<String> = s
            .iter(LUN_MAPS)
            .filter(|(_, m)| str_at(m, "/igroup/uuid") == uuid)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            let lun = match s.get_mut(LUN_MAPS, &k) {
                Some(m) => {
                    m["igroup"]["name"] = json!(new_name);
                    str_at(m, "/lun/uuid")
                }
                None => continue,
            };
            if let Some(l) = s.get_mut(LUNS, &lun) {
                if let Some(arr) = l["lun_maps"].as_array_mut() {
                    for e in arr.iter_mut().filter(|e| str_at(e, "/igroup/uuid") == uuid) {
                        e["igroup"]["name"] = json!(new_name);
                    }
                }
            }
        }
        Ok(())
    })
    .await
}

async fn igroup_delete(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, IGROUPS, &uuid, igroup_not_found)?;
    let allow = allows(&req, "allow_delete_while_mapped")?;
    let maps = maps_of_igroup(&sim, &uuid);
    if !maps.is_empty() && !allow {
        return Err(mapped_igroup());
    }
    guard_delete(&sim, "lun igroup delete", &rec, "igroup")?;
    let group = (IGROUPS, uuid.as_str(), &rec);
    commit::delete_mapped(&sim, (LUN_MAPS, &maps), group, |s, m| {
        unmap_in_store(s, &str_at(m, "/lun/uuid"), &uuid);
    })
    .await
}

fn mapped_igroup() -> ApiError {
    ApiError::new(409, "1254213", "The initiator group is mapped to one or more LUNs and \"allow_delete_while_mapped\" has not been specified.")
}

fn maps_of_igroup(sim: &Sim, igroup_uuid: &str) -> Vec<Value> {
    commit::maps_of(sim, LUN_MAPS, ("/igroup/uuid", igroup_uuid))
}

fn initiator_map(rec: &Value) -> BTreeMap<String, Value> {
    rec["initiators"]
        .as_array()
        .map(|a| a.iter().map(|i| (str_at(i, "/name"), i.clone())).collect())
        .unwrap_or_default()
}

async fn initiator_list(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, IGROUPS, &uuid, igroup_not_found)?;
    list_records(&req, &INITIATOR_SPEC, &initiator_map(&rec), |_| true)
}

async fn initiator_get(
    State(sim): State<Sim>,
    Path((uuid, name)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup(&sim, &req, IGROUPS, &uuid, igroup_not_found)?;
    let init = initiator_map(&rec)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        .map(|(_, v)| v)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "4",
                "The initiator is not a member of the initiator group.",
            )
        })?;
    Ok(super::render_one(&req, &INITIATOR_SPEC, &init))
}

async fn initiator_add(
    State(sim): State<Sim>,
    Path(uuid): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["name", "comment", "records"])?;
    let body = req.body_obj();
    let new = match (body.get("name"), body.get("records")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(400, "5374853", "You can add initiators to an initiator group using the \"records\" property, or the \"name\" property, but you cannot use both in the same request."));
        }
        (Some(_), None) => vec![(req_str(&body, "name")?, opt_str(&body, "comment")?)],
        (None, Some(r)) => initiator_entries(r, "records")?,
        (None, None) => {
            return Err(ApiError::new(
                400,
                "5374033",
                "Initiators must be supplied.",
            ))
        }
    };
    if new.is_empty() {
        return Err(ApiError::new(
            400,
            "5374033",
            "Initiators must be supplied.",
        ));
    }
    let before = lookup(&sim, &req, IGROUPS, &uuid, igroup_not_found)?;
    let os = str_at(&before, "/os_type");
    let existing = initiator_names(&before);
    check_igroup_initiators(&sim, &before, &os, (&existing, &new), "5374734")?;
    let mut after = before.clone();
    if let Some(arr) = after["initiators"].as_array_mut() {
        for (n, c) in &new {
            arr.push(initiator_record(&uuid, n, c.as_deref()));
        }
    }
    set_initiators(&sim, before, &after).await?;
    let recs: Vec<Value> = new
        .iter()
        .map(|(n, c)| initiator_record(&uuid, n, c.as_deref()))
        .collect();
    let location = format!("/api/protocols/san/igroups/{uuid}/initiators/{}", new[0].0);
    Ok(super::created_all(&req, recs, &location))
}

async fn initiator_remove(
    State(sim): State<Sim>,
    Path((uuid, name)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let before = lookup(&sim, &req, IGROUPS, &uuid, igroup_not_found)?;
    if !initiator_names(&before)
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&name))
    {
        return Err(ApiError::new(
            404,
            "5374034",
            "The initiator is not a member of the group.",
        ));
    }
    let allow = allows(&req, "allow_delete_while_mapped")?;
    if !allow && !maps_of_igroup(&sim, &uuid).is_empty() {
        return Err(mapped_igroup());
    }
    let mut after = before.clone();
    if let Some(arr) = after["initiators"].as_array_mut() {
        arr.retain(|i| !str_at(i, "/name").eq_ignore_ascii_case(&name));
    }
    set_initiators(&sim, before, &after).await?;
    Ok(ok_empty())
}

/// Commits an igroup's new initiator list (`after`; the rest of the igroup as the store
/// has it now).
async fn set_initiators(sim: &Sim, before: Value, after: &Value) -> Result<(), ApiError> {
    let uuid = str_at(after, "/uuid");
    commit::set_fields(sim, (IGROUPS, &uuid), before, after, &["initiators"]).await
}

// ---------------------------------------------------------------- LUN maps

fn map_key(lun: &str, igroup: &str) -> String {
    format!("{lun}/{igroup}")
}

/// Removes a map and its traces in the LUN and the igroup; deletes the igroup when it has
/// `delete_on_unmap` and no maps are left.
fn unmap_in_store(s: &mut Store, lun_uuid: &str, igroup_uuid: &str) {
    s.remove(LUN_MAPS, &map_key(lun_uuid, igroup_uuid));
    if let Some(l) = s.get_mut(LUNS, lun_uuid) {
        if let Some(arr) = l["lun_maps"].as_array_mut() {
            arr.retain(|e| str_at(e, "/igroup/uuid") != igroup_uuid);
            let mapped = !arr.is_empty();
            l["status"]["mapped"] = json!(mapped);
        }
    }
    let group = (IGROUPS, igroup_uuid);
    commit::unmap_from_group(s, group, "lun_maps", ("/lun/uuid", lun_uuid));
}

async fn map_get(
    State(sim): State<Sim>,
    Path((lun, igroup)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_one(&sim, &req, &LUN_MAP_SPEC, &map_key(&lun, &igroup))
}

async fn map_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&["svm", "igroup", "lun", "logical_unit_number"])?;
    let body = req.body_obj();
    let lun_ref = body.get("lun").cloned().ok_or_else(|| {
        ApiError::new(
            400,
            "5374901",
            "Either \"lun.uuid\" or \"lun.name\" must be provided to create a LUN map.",
        )
        .with_target("lun")
    })?;
    let ig_ref = body.get("igroup").cloned().ok_or_else(|| {
        ApiError::new(
            400,
            "5374902",
            "Either \"igroup.uuid\" or \"igroup.name\" must be provided to create a LUN map.",
        )
        .with_target("igroup")
    })?;
    let requested = match body.get("logical_unit_number") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::invalid_value("logical_unit_number", &v.to_string()))?,
        ),
    };
    let plan = |s: &Store| -> Result<(Value, Value, u32), ApiError> {
        let svm = if body.contains_key("svm") || req.svm_name.is_some() || req.svm_uuid.is_some() {
            Some(req.create_svm(s)?.0)
        } else {
            None
        };
        let (_, lun) = find_ref(s, LUNS, svm.as_deref(), &lun_ref)
            .ok_or_else(|| lun_not_found().with_target("lun"))?;
        let svm_uuid = str_at(lun, "/svm/uuid");
        let (ig_uuid, ig) = find_ref(s, IGROUPS, Some(&svm_uuid), &ig_ref)
            .ok_or_else(|| igroup_not_found().with_target("igroup"))?;
        let lun_uuid = str_at(lun, "/uuid");
        if s.get(LUN_MAPS, &map_key(&lun_uuid, &ig_uuid)).is_some() {
            return Err(ApiError::new(
                409,
                "1254207",
                "The LUN is already mapped to the same initiator group.",
            ));
        }
        let used = s
            .iter(LUN_MAPS)
            .filter(|(_, m)| str_at(m, "/igroup/uuid") == ig_uuid)
            .filter_map(|(_, m)| m["logical_unit_number"].as_u64())
            .map(|n| n as u32);
        let id = choose_lun_id(used, requested)?;
        Ok((lun.clone(), ig.clone(), id))
    };
    let (lun, ig, id) = sim.read(plan)?;
    let (lun_uuid, ig_uuid) = (str_at(&lun, "/uuid"), str_at(&ig, "/uuid"));
    let key = map_key(&lun_uuid, &ig_uuid);
    let lun_link = href_ref("/api/storage/luns", &lun_uuid, &str_at(&lun, "/name"));
    let ig_link = href_ref(
        "/api/protocols/san/igroups",
        &ig_uuid,
        &str_at(&ig, "/name"),
    );
    let record = json!({
        "svm": lun["svm"].clone(),
        "lun": lun_link,
        "igroup": ig_link,
        "logical_unit_number": id,
        "_links": {"self": {"href": format!("/api/protocols/san/lun-maps/{key}")}},
    });
    commit::create(&sim, &req, (LUN_MAPS, &key), &record, |s| {
        let (lun, ig, id2) = plan(s)?;
        if id2 != id {
            // Another map took the id meanwhile; the caller may retry.
            return Err(ApiError::new(
                409,
                "1254324",
                format!("The logical unit number {id} is already in use in the initiator group."),
            ));
        }
        let _ = (lun, ig);
        if let Some(l) = s.get_mut(LUNS, &lun_uuid) {
            l["status"]["mapped"] = json!(true);
            if let Some(arr) = l["lun_maps"].as_array_mut() {
                arr.push(json!({"igroup": ig_link, "logical_unit_number": id}));
            }
        }
        if let Some(g) = s.get_mut(IGROUPS, &ig_uuid) {
            if let Some(arr) = g["lun_maps"].as_array_mut() {
                arr.push(json!({"lun": lun_link, "logical_unit_number": id}));
            }
        }
        Ok(())
    })
    .await
}

async fn map_delete(
    State(sim): State<Sim>,
    Path((lun, igroup)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let key = map_key(&lun, &igroup);
    let rec = match sim.read(|s| visible(s, &req, LUN_MAPS, &key))? {
        Some(r) => r,
        None => {
            return Err(sim.read(|s| {
                if s.get(LUNS, &lun).is_none() {
                    lun_not_found()
                } else if s.get(IGROUPS, &igroup).is_none() {
                    igroup_not_found()
                } else {
                    ApiError::not_found_msg("The LUN map does not exist.")
                }
            }));
        }
    };
    crate::resources::mav::guard(
        &sim,
        "lun mapping delete",
        &[
            ("vserver", &str_at(&rec, "/svm/name")),
            ("path", &str_at(&rec, "/lun/name")),
            ("igroup", &str_at(&rec, "/igroup/name")),
        ],
    )?;
    commit_ok(&sim, [deleted(LUN_MAPS, &rec)], |s| {
        unmap_in_store(s, &lun, &igroup);
        Ok(())
    })
    .await
}

// ---------------------------------------------------------------- iSCSI services

fn no_iscsi_service() -> ApiError {
    ApiError::new(404, "5374078", "The SVM does not have an iSCSI service.")
}

async fn iscsi_get(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_in_svm(
        &sim,
        &req,
        &ISCSI_SERVICE_SPEC,
        (&svm, &svm),
        no_iscsi_service,
    )
}

/// 404 2621462 when the SVM itself does not exist, else `otherwise`.
pub(crate) fn svm_or(s: &Store, svm_uuid: &str, otherwise: ApiError) -> ApiError {
    if s.get(coll::SVMS, svm_uuid).is_none() {
        ApiError::new(
            404,
            "2621462",
            "An SVM with the specified UUID does not exist.",
        )
    } else {
        otherwise
    }
}

/// The record `key` of `collection` (a service or credential of SVM `svm`) when the
/// request may see it; else 404 2621462 when the SVM does not exist, or `missing`.
pub(crate) fn lookup_in_svm(
    sim: &Sim,
    req: &ApiRequest,
    (collection, key): (&str, &str),
    svm: &str,
    missing: fn() -> ApiError,
) -> Result<Value, ApiError> {
    lookup(sim, req, collection, key, || {
        sim.read(|s| svm_or(s, svm, missing()))
    })
}

/// Instance GET of record `key` of `spec` (a service or credential of SVM `svm`): when the
/// store has no such record, 404 2621462 if the SVM does not exist, else `missing`.
pub(crate) fn get_in_svm(
    sim: &Sim,
    req: &ApiRequest,
    spec: &ResourceSpec,
    (key, svm): (&str, &str),
    missing: fn() -> ApiError,
) -> Result<Response, ApiError> {
    if sim.read(|s| s.get(spec.collection, key).is_none()) {
        return Err(sim.read(|s| svm_or(s, svm, missing())));
    }
    get_one(sim, req, spec, key)
}

/// The SVM a service POST is for (body `svm` or tunnel headers), refused with `taken`
/// when it has a record of `collection` (its service) already.
pub(crate) fn svm_without(
    s: &Store,
    req: &ApiRequest,
    collection: &str,
    taken: fn() -> ApiError,
) -> Result<(String, String), ApiError> {
    let (u, n) = req.create_svm(s)?;
    if s.get(collection, &u).is_some() {
        return Err(taken());
    }
    Ok((u, n))
}

fn iscsi_exists() -> ApiError {
    ApiError::new(
        409,
        "5374077",
        "An iSCSI service already exists for the specified SVM.",
    )
}

async fn iscsi_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&["svm", "enabled", "target.alias"])?;
    let body = req.body_obj();
    let enabled = opt_bool(&body, "enabled")?.unwrap_or(true);
    let alias = opt_str(&body, "target.alias")?;
    let record = sim.write(|s| -> Result<Value, ApiError> {
        let (svm_uuid, svm_name) = svm_without(s, &req, coll::ISCSI_SERVICES, iscsi_exists)?;
        let vs = s.next_counter("vserver_id") + 100;
        Ok(json!({
            "svm": svm_ref(&svm_uuid, &svm_name),
            "enabled": enabled,
            "target": {"name": iscsi_target_name(&svm_uuid, vs as u32),
                       "alias": alias.unwrap_or_else(|| svm_name.clone())},
            "_links": {"self": {"href": format!("/api/protocols/san/iscsi/services/{svm_uuid}")}},
        }))
    })?;
    let svm_uuid = str_at(&record, "/svm/uuid");
    commit::create_service(&sim, &req, ISCSI_SERVICE, &record, |s| {
        if s.get(coll::ISCSI_SERVICES, &svm_uuid).is_some() {
            return Err(iscsi_exists());
        }
        Ok(())
    })
    .await
}

async fn iscsi_patch(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["enabled", "target.alias"])?;
    let body = req.body_obj();
    let before = lookup_in_svm(
        &sim,
        &req,
        (coll::ISCSI_SERVICES, &svm),
        &svm,
        no_iscsi_service,
    )?;
    let mut after = before.clone();
    if let Some(e) = opt_bool(&body, "enabled")? {
        after["enabled"] = json!(e);
    }
    if let Some(a) = opt_str(&body, "target.alias")? {
        after["target"]["alias"] = json!(a);
    }
    commit::replace(&sim, coll::ISCSI_SERVICES, &svm, before, after).await
}

async fn iscsi_delete(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup_in_svm(
        &sim,
        &req,
        (coll::ISCSI_SERVICES, &svm),
        &svm,
        no_iscsi_service,
    )?;
    if rec["enabled"] == true {
        return Err(ApiError::new(409, "5373960", "The iSCSI service is enabled. The iSCSI service must be disabled before it can be deleted."));
    }
    commit::delete_service(&sim, ISCSI_SERVICE, &svm, &rec).await
}

// ---------------------------------------------------------------- iSCSI credentials (CHAP)

fn cred_key(svm: &str, initiator: &str) -> String {
    format!("{svm}/{initiator}")
}

fn no_credential() -> ApiError {
    ApiError::new(
        404,
        "5374895",
        "The iSCSI security credential does not exist on the specified SVM.",
    )
}

/// CHAP settings from a body; passwords stay in this value only and never reach the store.
fn chap_from_body(body: &Map<String, Value>) -> Result<Chap, ApiError> {
    Ok(Chap {
        inbound_user: opt_str(body, "chap.inbound.user")?,
        inbound_password: secret_str(body, "chap.inbound.password")?,
        outbound_user: opt_str(body, "chap.outbound.user")?,
        outbound_password: secret_str(body, "chap.outbound.password")?,
    })
}

/// Like `opt_str`, but the error never echoes the value.
fn secret_str(body: &Map<String, Value>, path: &'static str) -> Result<Option<String>, ApiError> {
    match body_at(body, path) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::new(
            400,
            "262185",
            format!("Invalid value for field \"{path}\"."),
        )
        .with_target(path)),
    }
}

/// The side-channel change carrying CHAP passwords to the backend (never stored).
fn chap_change(svm_uuid: &str, initiator: &str, chap: &Chap) -> Change {
    let secret = |p: &Option<String>| {
        p.as_ref()
            .map(|p| crate::backend::ChapSecret::new(secrecy::SecretString::from(p.clone())))
    };
    Change::ChapSet {
        svm_uuid: svm_uuid.to_string(),
        initiator: initiator.to_string(),
        inbound_user: chap.inbound_user.clone(),
        inbound_password: secret(&chap.inbound_password),
        outbound_user: chap.outbound_user.clone(),
        outbound_password: secret(&chap.outbound_password),
    }
}

/// The stored (and returned) form of CHAP settings: user names only.
fn chap_public(chap: &Chap) -> Value {
    let mut out = json!({});
    if let Some(u) = &chap.inbound_user {
        out["inbound"] = json!({"user": u});
    }
    if let Some(u) = &chap.outbound_user {
        out["outbound"] = json!({"user": u});
    }
    out
}

async fn cred_get(
    State(sim): State<Sim>,
    Path((svm, initiator)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let key = cred_key(&svm, &initiator);
    get_in_svm(&sim, &req, &CREDENTIALS_SPEC, (&key, &svm), no_credential)
}

async fn cred_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&[
        "svm",
        "initiator",
        "authentication_type",
        "chap",
        "initiator_address",
    ])?;
    let body = req.body_obj();
    let initiator = req_str(&body, "initiator")?;
    check_iscsi_name(&initiator).map_err(|v| ApiError::from(v).with_target("initiator"))?;
    let auth = req_enum(&body, "authentication_type", &["chap", "none", "deny"])?;
    let auth = AuthType::parse(&auth).unwrap_or(AuthType::None);
    let chap = chap_from_body(&body)?;
    check_credentials(auth, &chap)?;
    let plan = |s: &Store| -> Result<(String, String), ApiError> {
        let (svm_uuid, svm_name) = req.create_svm(s)?;
        if s.get(coll::ISCSI_SERVICES, &svm_uuid).is_none() {
            return Err(ApiError::new(
                400,
                "5374078",
                "The iSCSI service does not exist.",
            ));
        }
        if s.get(ISCSI_CREDENTIALS, &cred_key(&svm_uuid, &initiator))
            .is_some()
        {
            return Err(ApiError::new(
                409,
                "5374142",
                "An iSCSI security credential already exists for the specified initiator.",
            ));
        }
        Ok((svm_uuid, svm_name))
    };
    let (svm_uuid, svm_name) = sim.read(plan)?;
    let key = cred_key(&svm_uuid, &initiator);
    let mut record = json!({
        "svm": svm_ref(&svm_uuid, &svm_name),
        "initiator": initiator,
        "authentication_type": auth.as_str(),
        "_links": {"self": {"href": format!("/api/protocols/san/iscsi/credentials/{key}")}},
    });
    if auth == AuthType::Chap {
        record["chap"] = chap_public(&chap);
    }
    if let Some(a) = body.get("initiator_address") {
        record["initiator_address"] = a.clone();
    }
    // Passwords first, so the backend has them when it sees the CHAP credential.
    let passwords = (auth == AuthType::Chap).then(|| chap_change(&svm_uuid, &initiator, &chap));
    let changes: Vec<Change> = passwords
        .into_iter()
        .chain([commit::created(ISCSI_CREDENTIALS, &record)])
        .collect();
    commit::commit(&sim, changes, |s| {
        plan(s)?;
        s.insert(ISCSI_CREDENTIALS, &key, record.clone());
        Ok(())
    })
    .await?;
    Ok(super::created(
        &req,
        &record,
        &format!("/api/protocols/san/iscsi/credentials/{key}"),
    ))
}

async fn cred_patch(
    State(sim): State<Sim>,
    Path((svm, initiator)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    req.check_fields(&["authentication_type", "chap", "initiator_address"])?;
    let body = req.body_obj();
    let key = cred_key(&svm, &initiator);
    let before = lookup_in_svm(&sim, &req, (ISCSI_CREDENTIALS, &key), &svm, no_credential)?;
    let auth = match opt_enum(&body, "authentication_type", &["chap", "none", "deny"])? {
        Some(a) => AuthType::parse(&a).unwrap_or(AuthType::None),
        None => AuthType::parse(&str_at(&before, "/authentication_type")).unwrap_or(AuthType::None),
    };
    let given = chap_from_body(&body)?;
    if auth == AuthType::Chap {
        // Passwords are write-only and not kept: a PATCH to CHAP must carry the inbound
        // password unless it only changes users of an existing CHAP credential.
        let merged = Chap {
            inbound_user: given
                .inbound_user
                .clone()
                .or_else(|| opt_str_v(&before, "/chap/inbound/user")),
            inbound_password: given.inbound_password.clone().or_else(|| {
                (str_at(&before, "/authentication_type") == "chap").then(|| "\u{0}kept".to_string())
            }),
            outbound_user: given
                .outbound_user
                .clone()
                .or_else(|| opt_str_v(&before, "/chap/outbound/user")),
            outbound_password: given.outbound_password.clone().or_else(|| {
                opt_str_v(&before, "/chap/outbound/user").map(|_| "\u{0}kept-out".to_string())
            }),
        };
        check_credentials(auth, &merged)?;
    } else {
        check_credentials(auth, &given)?;
    }
    let mut after = before.clone();
    after["authentication_type"] = json!(auth.as_str());
    if auth == AuthType::Chap {
        let mut chap = before.get("chap").cloned().unwrap_or(json!({}));
        if let Some(u) = &given.inbound_user {
            chap["inbound"] = json!({"user": u});
        }
        if let Some(u) = &given.outbound_user {
            chap["outbound"] = json!({"user": u});
        }
        after["chap"] = chap;
    } else if let Some(m) = after.as_object_mut() {
        m.remove("chap");
    }
    if let Some(a) = body.get("initiator_address") {
        after["initiator_address"] = a.clone();
    }
    let svm_uuid = str_at(&before, "/svm/uuid");
    if auth == AuthType::Chap {
        realise(&sim, chap_change(&svm_uuid, &initiator, &given)).await?;
    }
    commit::replace(&sim, ISCSI_CREDENTIALS, &key, before, after).await
}

fn opt_str_v(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

async fn cred_delete(
    State(sim): State<Sim>,
    Path((svm, initiator)): Path<(String, String)>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let key = cred_key(&svm, &initiator);
    let rec = lookup_in_svm(&sim, &req, (ISCSI_CREDENTIALS, &key), &svm, no_credential)?;
    commit::remove(&sim, ISCSI_CREDENTIALS, &key, &rec).await
}

// ---------------------------------------------------------------- FC services

fn no_fcp_service() -> ApiError {
    ApiError::new(
        404,
        "5374083",
        "There is no Fibre Channel Protocol service for the specified SVM.",
    )
}

async fn fcp_get(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    get_in_svm(&sim, &req, &FCP_SERVICE_SPEC, (&svm, &svm), no_fcp_service)
}

fn fcp_exists() -> ApiError {
    ApiError::new(
        409,
        "5374082",
        "The Fibre Channel Protocol service already exists for the SVM.",
    )
}

async fn fcp_create(State(sim): State<Sim>, req: ApiRequest) -> Result<Response, ApiError> {
    req.check_fields(&["svm", "enabled"])?;
    let body = req.body_obj();
    let enabled = opt_bool(&body, "enabled")?.unwrap_or(true);
    let plan = |s: &Store| svm_without(s, &req, FCP_SERVICES, fcp_exists);
    let (u, n) = sim.read(plan)?;
    let record = json!({
        "svm": svm_ref(&u, &n),
        "enabled": enabled,
        "target": {"name": rules::fcp_target_wwnn(&u)},
        "_links": {"self": {"href": format!("/api/protocols/san/fcp/services/{u}")}},
    });
    commit::create_service(&sim, &req, FCP_SERVICE, &record, |s| plan(s).map(drop)).await
}

async fn fcp_patch(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    patch_enabled(&sim, &req, (FCP_SERVICES, &svm), no_fcp_service).await
}

/// PATCH of the protocol service of SVM `svm` (record of `collection`) whose only
/// patchable field is `enabled`; `missing` answers when the SVM has none.
pub(crate) async fn patch_enabled(
    sim: &Sim,
    req: &ApiRequest,
    (collection, svm): (&str, &str),
    missing: fn() -> ApiError,
) -> Result<Response, ApiError> {
    req.check_fields(&["enabled"])?;
    let body = req.body_obj();
    let before = lookup_in_svm(sim, req, (collection, svm), svm, missing)?;
    let mut after = before.clone();
    if let Some(e) = opt_bool(&body, "enabled")? {
        after["enabled"] = json!(e);
    }
    commit::replace(sim, collection, svm, before, after).await
}

async fn fcp_delete(
    State(sim): State<Sim>,
    Path(svm): Path<String>,
    req: ApiRequest,
) -> Result<Response, ApiError> {
    let rec = lookup_in_svm(&sim, &req, (FCP_SERVICES, &svm), &svm, no_fcp_service)?;
    if rec["enabled"] == true {
        return Err(ApiError::new(
            409,
            "5373960",
            "The Fibre Channel Protocol service cannot be removed while it is enabled.",
        ));
    }
    commit::delete_service(&sim, FCP_SERVICE, &svm, &rec).await
}
