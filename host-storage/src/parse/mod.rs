//! Pure parsers of captured command output and host files.
//!
//! Every function here takes text and returns typed values, with no I/O, so each is tested on
//! real captures (`tests/fixtures/`). Machine formats (`-o json`, sysfs, `/proc`) are preferred
//! where the tools offer them; text formats are parsed where they are all there is.

pub mod dmsetup;
pub mod iscsi;
pub mod mountinfo;
pub mod multipath;
pub mod nvme;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Format, Result};

/// A SCSI address: host, channel, target, LUN (`H:C:T:L`).
///
/// ```
/// use host_storage::parse::Hctl;
/// let h: Hctl = "34:0:0:2".parse()?;
/// assert_eq!((h.host, h.channel, h.target, h.lun), (34, 0, 0, 2));
/// assert_eq!(h.to_string(), "34:0:0:2");
/// # Ok::<(), host_storage::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hctl {
    /// SCSI host number (`hostN`).
    pub host: u32,
    /// Channel (bus).
    pub channel: u32,
    /// Target id.
    pub target: u32,
    /// Logical unit number.
    pub lun: u64,
}

impl fmt::Display for Hctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.host, self.channel, self.target, self.lun
        )
    }
}

impl FromStr for Hctl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::parse(Format::MultipathLl, 0, "expected H:C:T:L");
        let mut it = s.split(':');
        let mut next = || it.next().ok_or_else(bad);
        let host = next()?.parse().map_err(|_| bad())?;
        let channel = next()?.parse().map_err(|_| bad())?;
        let target = next()?.parse().map_err(|_| bad())?;
        let lun = next()?.parse().map_err(|_| bad())?;
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(Hctl {
            host,
            channel,
            target,
            lun,
        })
    }
}

/// A network portal `address:port`; IPv6 addresses are stored without brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Portal {
    /// IP address or host name.
    pub address: String,
    /// TCP port.
    pub port: u16,
}

impl Portal {
    /// Parses `10.0.0.1:3260` or `[fd00::1]:3260`.
    pub(crate) fn parse(s: &str) -> Option<Portal> {
        let (addr, port) = s.rsplit_once(':')?;
        let port = port.parse().ok()?;
        let addr = addr
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(addr);
        if addr.is_empty() {
            return None;
        }
        Some(Portal {
            address: addr.to_owned(),
            port,
        })
    }
}

impl fmt::Display for Portal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.address.contains(':') {
            write!(f, "[{}]:{}", self.address, self.port)
        } else {
            write!(f, "{}:{}", self.address, self.port)
        }
    }
}

/// Decodes a JSON document, naming the format on failure.
pub(crate) fn json<T: serde::de::DeserializeOwned>(format: Format, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|source| Error::Json { format, source })
}
