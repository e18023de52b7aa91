//! Validated vocabulary types: IQN, NQN, WWPN/WWNN, WWID, LUN serial, host names and tokens
//! safe to write into configuration lines.
//!
//! Each type is checked once, when it is built (`parse` / [`FromStr`]), and is then known to
//! be safe to put in an argv element, a map line, an fstab line or an nvme-cli config entry.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::error::{Error, Result, ValueKind};

/// Longest IQN or NQN allowed by RFC 3720 and the NVMe base specification, in bytes.
pub const MAX_QUALIFIED_NAME_LEN: usize = 223;

/// Characters that would break a map, fstab, option or config line.
fn breaks_config_line(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, ',' | '=' | '#' | ';' | '"' | '\'' | '\\')
}

/// Checks the `YYYY-MM.` date part shared by IQN and NQN; returns the rest after the dot.
fn split_date<'a>(kind: ValueKind, full: &str, rest: &'a str) -> Result<&'a str> {
    let b = rest.as_bytes();
    let ok = b.len() > 8
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit)
        && b[7] == b'.';
    if !ok {
        return Err(Error::invalid(
            kind,
            full,
            "expected a YYYY-MM. date after the prefix",
        ));
    }
    let month = (b[5] - b'0') * 10 + (b[6] - b'0');
    if !(1..=12).contains(&month) {
        return Err(Error::invalid(kind, full, "month must be 01 to 12"));
    }
    Ok(&rest[8..])
}

/// Checks a (reversed) domain name: dot-separated non-empty labels of `[A-Za-z0-9-]`.
fn check_domain(kind: ValueKind, full: &str, domain: &str) -> Result<()> {
    if domain.is_empty()
        || domain
            .split('.')
            .any(|l| l.is_empty() || !l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
    {
        return Err(Error::invalid(
            kind,
            full,
            "naming authority must be a reversed domain name",
        ));
    }
    Ok(())
}

macro_rules! string_newtype_common {
    ($t:ident) => {
        impl $t {
            /// The validated value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                Self::parse(&s)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
        impl From<$t> for String {
            fn from(v: $t) -> String {
                v.0
            }
        }
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// An iSCSI qualified name: `iqn.YYYY-MM.reversed.domain[:suffix]` or `eui.` + 16 hex digits.
///
/// IQNs are case-insensitive (RFC 3720 §3.2.6.1), so the `iqn.` form is stored lowercase; the
/// `eui.` form is stored with uppercase hex, as the RFC writes it. At most 223 bytes.
///
/// ```
/// use host_storage::Iqn;
/// let iqn: Iqn = "iqn.1992-08.com.netapp:sn.afbb1784f77411e582f8080027e22798:vs.3".parse()?;
/// assert_eq!(iqn.as_str(), "iqn.1992-08.com.netapp:sn.afbb1784f77411e582f8080027e22798:vs.3");
/// assert_eq!(Iqn::parse("eui.02004567a425678d")?.as_str(), "eui.02004567A425678D");
/// assert!(Iqn::parse("iqn.1992-13.com.netapp:x").is_err());
/// assert!(Iqn::parse("iqn.1992-08.com.netapp:bad name").is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iqn(String);

impl Iqn {
    /// Validates and normalises an IQN.
    pub fn parse(s: &str) -> Result<Self> {
        const K: ValueKind = ValueKind::Iqn;
        if s.len() > MAX_QUALIFIED_NAME_LEN {
            return Err(Error::invalid(K, s, "longer than 223 bytes"));
        }
        let lower = s.to_ascii_lowercase();
        if let Some(hex) = lower.strip_prefix("eui.") {
            if hex.len() != 16 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::invalid(
                    K,
                    s,
                    "eui. must be followed by 16 hex digits",
                ));
            }
            return Ok(Iqn(format!("eui.{}", hex.to_ascii_uppercase())));
        }
        let Some(rest) = lower.strip_prefix("iqn.") else {
            return Err(Error::invalid(K, s, "must start with iqn. or eui."));
        };
        let rest = split_date(K, s, rest)?;
        let (domain, suffix) = match rest.split_once(':') {
            Some((d, sfx)) => (d, Some(sfx)),
            None => (rest, None),
        };
        check_domain(K, s, domain)?;
        if let Some(sfx) = suffix {
            if sfx.is_empty()
                || !sfx
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b':' | b'-' | b'_'))
            {
                return Err(Error::invalid(
                    K,
                    s,
                    "suffix must be non-empty letters, digits, '.', ':', '-' or '_'",
                ));
            }
        }
        Ok(Iqn(lower))
    }
}
string_newtype_common!(Iqn);

/// The NQN prefix of host NQNs generated from a UUID.
pub const NQN_UUID_PREFIX: &str = "nqn.2014-08.org.nvmexpress:uuid:";

/// The well-known NQN of NVMe discovery controllers.
pub const NQN_DISCOVERY: &str = "nqn.2014-08.org.nvmexpress.discovery";

/// An NVMe qualified name: `nqn.YYYY-MM.reverse.domain:string`, the UUID form
/// `nqn.2014-08.org.nvmexpress:uuid:<uuid>`, or the discovery NQN. At most 223 bytes.
///
/// NQNs are compared exactly (case is kept). Whitespace, `,` `=` `;` `#` and quotes are
/// refused because the NQN travels in `/dev/nvme-fabrics` option strings and nvme-cli config
/// files.
///
/// ```
/// use host_storage::Nqn;
/// let host = Nqn::parse("nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc")?;
/// assert_eq!(host.uuid(), Some("12372496-59c4-4d1b-be09-74362c0c1afc"));
/// assert!(Nqn::parse("nqn.2014-08.org.nvmexpress:uuid:not-a-uuid").is_err());
/// assert!(Nqn::parse("mock-nqn").is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nqn(String);

impl Nqn {
    /// Validates an NQN.
    pub fn parse(s: &str) -> Result<Self> {
        const K: ValueKind = ValueKind::Nqn;
        if s.len() > MAX_QUALIFIED_NAME_LEN {
            return Err(Error::invalid(K, s, "longer than 223 bytes"));
        }
        if s.chars().any(breaks_config_line) || !s.is_ascii() {
            return Err(Error::invalid(
                K,
                s,
                "must be printable ASCII without space, ',', '=', ';', '#' or quotes",
            ));
        }
        if s == NQN_DISCOVERY {
            return Ok(Nqn(s.to_owned()));
        }
        if let Some(uuid) = s.strip_prefix(NQN_UUID_PREFIX) {
            if !is_uuid(uuid) {
                return Err(Error::invalid(K, s, "the uuid: form needs a UUID"));
            }
            return Ok(Nqn(s.to_owned()));
        }
        let Some(rest) = s.strip_prefix("nqn.") else {
            return Err(Error::invalid(K, s, "must start with nqn."));
        };
        let rest = split_date(K, s, rest)?;
        let Some((domain, tail)) = rest.split_once(':') else {
            return Err(Error::invalid(K, s, "must have ':' after the domain"));
        };
        check_domain(K, s, domain)?;
        if tail.is_empty() {
            return Err(Error::invalid(K, s, "must have a name after ':'"));
        }
        Ok(Nqn(s.to_owned()))
    }

    /// A host NQN in the UUID form, as `nvme gen-hostnqn` makes it.
    ///
    /// ```
    /// use host_storage::Nqn;
    /// let nqn = Nqn::from_uuid("D2DF33B9-3EED-4A71-93BD-54A0F92FC9E3")?;
    /// assert_eq!(nqn.as_str(), "nqn.2014-08.org.nvmexpress:uuid:d2df33b9-3eed-4a71-93bd-54a0f92fc9e3");
    /// # Ok::<(), host_storage::Error>(())
    /// ```
    pub fn from_uuid(uuid: &str) -> Result<Self> {
        if !is_uuid(uuid) {
            return Err(Error::invalid(
                ValueKind::Uuid,
                uuid,
                "expected 8-4-4-4-12 hex digits",
            ));
        }
        Ok(Nqn(format!(
            "{NQN_UUID_PREFIX}{}",
            uuid.to_ascii_lowercase()
        )))
    }

    /// The UUID of a UUID-form NQN.
    pub fn uuid(&self) -> Option<&str> {
        self.0.strip_prefix(NQN_UUID_PREFIX)
    }
}
string_newtype_common!(Nqn);

/// True for the textual 8-4-4-4-12 hex UUID form.
pub(crate) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                *c == b'-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Parses the 16 hex digits of a world wide name written as `20:00:…`, `0x2000…` or `2000…`.
fn parse_wwn(s: &str) -> Result<u64> {
    let t = s.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let hex: String = if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() != 8 || parts.iter().any(|p| p.len() != 2) {
            return Err(Error::invalid(
                ValueKind::Wwn,
                s,
                "colon form needs 8 groups of 2 hex digits",
            ));
        }
        parts.concat()
    } else {
        t.to_owned()
    };
    if hex.len() != 16 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid(ValueKind::Wwn, s, "expected 16 hex digits"));
    }
    u64::from_str_radix(&hex, 16)
        .map_err(|_| Error::invalid(ValueKind::Wwn, s, "expected 16 hex digits"))
}

macro_rules! wwn_type {
    ($(#[$m:meta])* $t:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $t(u64);

        impl $t {
            /// Parses `20:00:00:25:b5:00:00:0a`, `0x20000025b500000a` or `20000025b500000a`.
            pub fn parse(s: &str) -> Result<Self> {
                parse_wwn(s).map($t)
            }

            /// The 16 lowercase hex digits, no separators (the by-path and multipath form).
            pub fn to_hex(self) -> String {
                format!("{:016x}", self.0)
            }

            /// The `0x`-prefixed form used in sysfs (`/sys/class/fc_host/hostN/port_name`).
            pub fn to_sysfs(self) -> String {
                format!("0x{:016x}", self.0)
            }

            /// The numeric value.
            pub fn as_u64(self) -> u64 {
                self.0
            }
        }

        /// Colon-separated lowercase pairs, the form ONTAP uses for initiators.
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let b = self.0.to_be_bytes();
                write!(
                    f,
                    "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
                )
            }
        }

        impl FromStr for $t {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }

        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

wwn_type!(
    /// A Fibre Channel world wide port name (16 hex digits).
    ///
    /// ```
    /// use host_storage::Wwpn;
    /// let a = Wwpn::parse("20:04:00:50:56:BB:A0:E0")?;
    /// let b = Wwpn::parse("0x20040050 56bba0e0".replace(' ', "").as_str())?;
    /// assert_eq!(a, b);
    /// assert_eq!(a.to_string(), "20:04:00:50:56:bb:a0:e0");
    /// assert_eq!(a.to_hex(), "2004005056bba0e0");
    /// assert_eq!(a.to_sysfs(), "0x2004005056bba0e0");
    /// assert!(Wwpn::parse("20:04:00:50:56:bb:a0").is_err());
    /// # Ok::<(), host_storage::Error>(())
    /// ```
    Wwpn
);

wwn_type!(
    /// A Fibre Channel world wide node name (16 hex digits); same forms as [`Wwpn`].
    Wwnn
);

/// The NAA prefix of every ONTAP LUN WWID: NAA type 6 (`3` in udev notation) and NetApp's
/// IEEE company id `00a098`, then `0`.
pub const NETAPP_NAA_PREFIX: &str = "3600a0980";

/// A device-mapper multipath WWID, as `multipath -ll` prints it and `/sys/block/dm-N/dm/uuid`
/// stores it after `mpath-` (for example `3600a0980774f6a34663f57396c4f6b37`).
///
/// Any non-empty printable ASCII of at most 128 bytes without `/`, whitespace or characters
/// that break a configuration line. Hex-only WWIDs are stored lowercase.
///
/// ```
/// use host_storage::Wwid;
/// let w = Wwid::parse("3600A0980774F6A34663F57396C4F6B37")?;
/// assert_eq!(w.as_str(), "3600a0980774f6a34663f57396c4f6b37");
/// assert_eq!(w.netapp_lun_serial().unwrap().as_str(), "wOj4f?W9lOk7");
/// assert_eq!(Wwid::from_dm_uuid("mpath-3600a0980774f6a34663f57396c4f6b37")?, w);
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Wwid(String);

impl Wwid {
    /// Validates a WWID.
    pub fn parse(s: &str) -> Result<Self> {
        const K: ValueKind = ValueKind::Wwid;
        if s.is_empty() || s.len() > 128 {
            return Err(Error::invalid(K, s, "must be 1 to 128 bytes"));
        }
        if !s.is_ascii() || s.chars().any(|c| breaks_config_line(c) || c == '/') {
            return Err(Error::invalid(
                K,
                s,
                "must be printable ASCII without '/' or separators",
            ));
        }
        if s.bytes().all(|c| c.is_ascii_hexdigit()) {
            Ok(Wwid(s.to_ascii_lowercase()))
        } else {
            Ok(Wwid(s.to_owned()))
        }
    }

    /// The WWID from a `/sys/block/dm-N/dm/uuid` value (`mpath-<wwid>`); partition maps
    /// (`part1-mpath-…`) and other targets are refused.
    pub fn from_dm_uuid(uuid: &str) -> Result<Self> {
        match uuid.trim().strip_prefix("mpath-") {
            Some(w) => Self::parse(w),
            None => Err(Error::invalid(
                ValueKind::Wwid,
                uuid,
                "dm uuid does not start with mpath-",
            )),
        }
    }

    /// True for ONTAP LUNs (prefix `3600a0980`).
    pub fn is_netapp(&self) -> bool {
        self.0.starts_with(NETAPP_NAA_PREFIX)
    }

    /// The ONTAP LUN serial encoded in a NetApp WWID, if this is one.
    pub fn netapp_lun_serial(&self) -> Option<LunSerial> {
        let hex = self.0.strip_prefix(NETAPP_NAA_PREFIX)?;
        if hex.len() != 24 {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..12)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        let s = String::from_utf8(bytes?).ok()?;
        LunSerial::parse(&s).ok()
    }
}
string_newtype_common!(Wwid);

/// An ONTAP LUN serial number: exactly 12 printable ASCII characters (for example
/// `wf0Iq+N4uck3`), as in the `serial_number` field of `/api/storage/luns` and in the SCSI
/// VPD page 0x80 of every path.
///
/// ```
/// use host_storage::LunSerial;
/// let s = LunSerial::parse("wOj4f?W9lOk7")?;
/// assert_eq!(s.naa_wwid().as_str(), "3600a0980774f6a34663f57396c4f6b37");
/// assert!(LunSerial::parse("short").is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LunSerial(String);

impl LunSerial {
    /// Validates a serial.
    pub fn parse(s: &str) -> Result<Self> {
        if s.len() != 12 {
            return Err(Error::invalid(
                ValueKind::LunSerial,
                s,
                "must be exactly 12 characters",
            ));
        }
        if !s.bytes().all(|c| c.is_ascii_graphic()) {
            return Err(Error::invalid(
                ValueKind::LunSerial,
                s,
                "must be printable ASCII without spaces",
            ));
        }
        Ok(LunSerial(s.to_owned()))
    }

    /// The multipath WWID ONTAP derives from the serial: `3600a0980` followed by the lowercase
    /// hex of the 12 serial bytes.
    pub fn naa_wwid(&self) -> Wwid {
        let mut s = String::with_capacity(33);
        s.push_str(NETAPP_NAA_PREFIX);
        for b in self.0.bytes() {
            s.push_str(&format!("{b:02x}"));
        }
        Wwid(s)
    }
}
string_newtype_common!(LunSerial);

/// A host name (RFC 1123 labels) or an IPv4/IPv6 address, such as an NFS server or an iSCSI
/// portal.
///
/// ```
/// use host_storage::HostName;
/// assert_eq!(HostName::parse("filer-01.example.com")?.as_str(), "filer-01.example.com");
/// let v6 = HostName::parse("fd00::5")?;
/// assert_eq!(v6.for_address(), "[fd00::5]");
/// assert_eq!(HostName::parse("10.0.0.5")?.for_address(), "10.0.0.5");
/// assert!(HostName::parse("bad_name").is_err());
/// assert!(HostName::parse("a,b").is_err());
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostName(String);

impl HostName {
    /// Validates a host name or IP address.
    pub fn parse(s: &str) -> Result<Self> {
        const K: ValueKind = ValueKind::HostName;
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(HostName(ip.to_string()));
        }
        if s.is_empty() || s.len() > 253 {
            return Err(Error::invalid(K, s, "must be 1 to 253 bytes"));
        }
        for label in s.strip_suffix('.').unwrap_or(s).split('.') {
            let b = label.as_bytes();
            if b.is_empty()
                || b.len() > 63
                || b[0] == b'-'
                || b[b.len() - 1] == b'-'
                || !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            {
                return Err(Error::invalid(
                    K,
                    s,
                    "labels must be 1 to 63 letters, digits or inner '-'",
                ));
            }
        }
        Ok(HostName(s.to_ascii_lowercase()))
    }

    /// The IP address, when this is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }

    /// The form used before `:` in `server:/export`: IPv6 addresses in brackets.
    pub fn for_address(&self) -> String {
        match self.ip() {
            Some(IpAddr::V6(_)) => format!("[{}]", self.0),
            _ => self.0.clone(),
        }
    }
}
string_newtype_common!(HostName);

/// A token that is safe to write into one field of a map, fstab, option or config line:
/// non-empty printable text of at most 255 bytes without whitespace, `,` `=` `#` `;`, quotes
/// or backslash.
///
/// ```
/// use host_storage::ConfigToken;
/// assert!(ConfigToken::parse("vm_store-01").is_ok());
/// for bad in ["", "a b", "a,b", "a=b", "a#b", "a\nb"] {
///     assert!(ConfigToken::parse(bad).is_err(), "{bad:?}");
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigToken(String);

impl ConfigToken {
    /// Validates a token.
    pub fn parse(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 255 {
            return Err(Error::invalid(
                ValueKind::ConfigToken,
                s,
                "must be 1 to 255 bytes",
            ));
        }
        if s.chars().any(breaks_config_line) {
            return Err(Error::invalid(
                ValueKind::ConfigToken,
                s,
                "must not contain whitespace, ',', '=', '#', ';', quotes or '\\'",
            ));
        }
        Ok(ConfigToken(s.to_owned()))
    }
}
string_newtype_common!(ConfigToken);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iqn_forms() {
        let real = [
            "iqn.1992-08.com.netapp:sn.afbb1784f77411e582f8080027e22798:vs.3",
            "iqn.2005-03.org.open-iscsi:123abc456de",
            "iqn.1994-05.com.redhat:6a4517b3773a",
            "iqn.2017-10.com.redhat.stirabos:data",
            "iqn.2004-04.com.qnap:ts-831x:iscsi.cinder-20170531114245.9eff88",
            "iqn.1994-05.com.redhat",
        ];
        for s in real {
            assert_eq!(Iqn::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(
            Iqn::parse("IQN.1994-05.COM.RedHat:ABC").unwrap().as_str(),
            "iqn.1994-05.com.redhat:abc"
        );
        assert_eq!(
            Iqn::parse("EUI.0123456789abcdef").unwrap().as_str(),
            "eui.0123456789ABCDEF"
        );
    }

    #[test]
    fn iqn_refusals() {
        for bad in [
            "",
            "iqn.",
            "iqn.1992-8.com.netapp",
            "iqn.1992-00.com.netapp",
            "iqn.1992-08com.netapp",
            "iqn.1992-08.:x",
            "iqn.1992-08.com..netapp",
            "iqn.1992-08.com.netapp:",
            "iqn.1992-08.com.netapp:a b",
            "iqn.1992-08.com.netapp:a,b",
            "iqn.1992-08.com.netapp:a=b",
            "iqn.1992-08.com.netapp:a#b",
            "iqn.1992-08.com.netapp:a\nb",
            "eui.0123456789abcde",
            "eui.0123456789abcdeg",
            "naa.0123456789abcdef",
            "tgt1",
        ] {
            let err = Iqn::parse(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        kind: ValueKind::Iqn,
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
        let long = format!("iqn.1992-08.com.netapp:{}", "a".repeat(200));
        assert_eq!(long.len(), 223);
        assert!(Iqn::parse(&long).is_ok());
        assert!(Iqn::parse(&format!("{long}a")).is_err());
    }

    #[test]
    fn nqn_forms() {
        for s in [
            "nqn.1992-08.com.netapp:sn.48391d66c0a611ecaaa5d039ea165514:subsystem.subsys_CLIENT116",
            "nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc",
            "nqn.2024-01.com.example:data.vol2",
            NQN_DISCOVERY,
        ] {
            assert_eq!(Nqn::parse(s).unwrap().as_str(), s);
        }
        for bad in [
            "nvmet-test",
            "mock-nqn",
            "nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afZ",
            "nqn.2017-03.jp.co.toshiba:KXG60ZNV512G NVMe TOSHIBA 512GB:49MA23BZK03N",
            "nqn.2024-01.com.example",
            "nqn.2024-01.com.example:",
            "nqn.2024-01.com.example:a;b",
            "nqn.2024-01.com.example:a=b",
        ] {
            assert!(
                matches!(
                    Nqn::parse(bad),
                    Err(Error::Invalid {
                        kind: ValueKind::Nqn,
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        let max = format!("nqn.2024-01.com.example:{}", "x".repeat(223 - 24));
        assert_eq!(max.len(), 223);
        assert!(Nqn::parse(&max).is_ok());
        assert!(Nqn::parse(&format!("{max}x")).is_err());
    }

    #[test]
    fn wwpn_forms_normalise() {
        let want = 0x2004_0050_56bb_a0e0_u64;
        for s in [
            "20:04:00:50:56:bb:a0:e0",
            "20:04:00:50:56:BB:A0:E0",
            "0x2004005056bba0e0",
            "0X2004005056BBA0E0",
            "2004005056bba0e0",
            " 0x2004005056bba0e0\n",
        ] {
            assert_eq!(Wwpn::parse(s).unwrap().as_u64(), want, "{s:?}");
        }
        for bad in [
            "",
            "20:04:00:50:56:bb:a0",
            "2004005056bba0e",
            "2004005056bba0e0f",
            "0x200400505gbba0e0",
            "2:004:00:50:56:bb:a0:e0",
        ] {
            assert!(Wwpn::parse(bad).is_err(), "{bad:?}");
        }
        let w = Wwnn::parse("20:00:00:50:56:bb:a0:e0").unwrap();
        assert_eq!(w.to_sysfs(), "0x2000005056bba0e0");
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            "\"20:00:00:50:56:bb:a0:e0\""
        );
    }

    #[test]
    fn lun_serial_naa_wwid_matches_real_multipath_capture() {
        // Pairs from multipath-ll_netapp_ontap_real.txt; the serial is the WWID's hex tail.
        let s = LunSerial::parse("wOj4f?W9lOk7").unwrap();
        assert_eq!(s.naa_wwid().as_str(), "3600a0980774f6a34663f57396c4f6b37");
        assert_eq!(
            Wwid::parse("3600a0980774f6a34663f57396c4f6b37")
                .unwrap()
                .netapp_lun_serial(),
            Some(s)
        );
        let w = Wwid::parse("3600a0980383147586e5d536f7839776d").unwrap();
        assert_eq!(w.netapp_lun_serial().unwrap().as_str(), "81GXn]Sox9wm");
        // Serial from the ONTAP REST example of /api/storage/luns.
        assert_eq!(
            LunSerial::parse("wf0Iq+N4uck3")
                .unwrap()
                .naa_wwid()
                .as_str(),
            "3600a098077663049712b4e3475636b33"
        );
        assert!(Wwid::parse("36005076da00638089c000000000004d5")
            .unwrap()
            .netapp_lun_serial()
            .is_none());
    }

    #[test]
    fn wwid_refusals() {
        for bad in ["", "a/b", "a b", "mpath,x"] {
            assert!(Wwid::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Wwid::from_dm_uuid("part1-mpath-3600a0980774f6a34663f57396c4f6b37").is_err());
    }

    #[test]
    fn host_names() {
        assert_eq!(HostName::parse("[fd00::5]").unwrap().as_str(), "fd00::5");
        assert_eq!(
            HostName::parse("Filer.Example.COM").unwrap().as_str(),
            "filer.example.com"
        );
        for bad in ["", "-a", "a-", "a..b", "a b", "a:b", &"x".repeat(64)] {
            assert!(HostName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
