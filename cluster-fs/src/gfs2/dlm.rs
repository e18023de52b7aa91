//! `/etc/dlm/dlm.conf` for `dlm_controld` (`key=value` lines, dlm.conf(5)).

use crate::error::{Error, Format, Result};

/// Where the file lives on a host.
pub const DLM_CONF: &str = "/etc/dlm/dlm.conf";

/// `protocol`: how DLM nodes talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DlmProtocol {
    /// `detect` (default): TCP with one ring, SCTP with several.
    Detect,
    /// `tcp`.
    Tcp,
    /// `sctp` (needed for several corosync links).
    Sctp,
}

impl DlmProtocol {
    /// The value in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            DlmProtocol::Detect => "detect",
            DlmProtocol::Tcp => "tcp",
            DlmProtocol::Sctp => "sctp",
        }
    }
}

/// The `dlm_controld` settings kvmstor manages.
///
/// ```
/// use cluster_fs::gfs2::{DlmConf, DlmProtocol};
/// let c = DlmConf { protocol: DlmProtocol::Tcp, ..DlmConf::default() };
/// assert_eq!(c.render(), "# Written by kvmstor.\nenable_fencing=1\nprotocol=tcp\n");
/// assert_eq!(DlmConf::parse(&c.render())?, c);
/// # Ok::<(), cluster_fs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DlmConf {
    /// `enable_fencing` (default on). Turning it off is for single-node test clusters only:
    /// without fencing a hung node can corrupt GFS2.
    pub enable_fencing: bool,
    /// `protocol`.
    pub protocol: DlmProtocol,
}

impl Default for DlmConf {
    fn default() -> Self {
        DlmConf {
            enable_fencing: true,
            protocol: DlmProtocol::Detect,
        }
    }
}

impl DlmConf {
    /// Renders the file.
    pub fn render(&self) -> String {
        format!(
            "# Written by kvmstor.\nenable_fencing={}\nprotocol={}\n",
            u8::from(self.enable_fencing),
            self.protocol.as_str()
        )
    }

    /// Parses the file; keys other than `enable_fencing` and `protocol` are ignored.
    pub fn parse(text: &str) -> Result<Self> {
        let mut c = DlmConf::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                return Err(Error::parse(Format::DlmConf, i + 1, "expected key=value"));
            };
            match (k.trim(), v.trim()) {
                ("enable_fencing", "0") => c.enable_fencing = false,
                ("enable_fencing", "1") => c.enable_fencing = true,
                ("enable_fencing", _) => {
                    return Err(Error::parse(
                        Format::DlmConf,
                        i + 1,
                        "enable_fencing must be 0 or 1",
                    ))
                }
                ("protocol", "detect") => c.protocol = DlmProtocol::Detect,
                ("protocol", "tcp") => c.protocol = DlmProtocol::Tcp,
                ("protocol", "sctp") => c.protocol = DlmProtocol::Sctp,
                ("protocol", _) => {
                    return Err(Error::parse(
                        Format::DlmConf,
                        i + 1,
                        "protocol must be detect, tcp or sctp",
                    ))
                }
                _ => {}
            }
        }
        Ok(c)
    }
}
