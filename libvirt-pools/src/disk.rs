//! Domain `<disk>` XML that hands a volume or LUN to a VM.
//!
//! Defaults suit shared storage (NFS, iSCSI/FC LUNs seen by several hosts): `cache='none'`
//! (O_DIRECT, so no host page cache to lose on migration or failover) and `io='native'`
//! (Linux AIO, which QEMU only allows with O_DIRECT).

use crate::error::Error;
use crate::names::{PoolName, VolumeName};
use crate::volume::VolumeFormat;
use crate::xml::Element;

/// The guest bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskBus {
    /// virtio-blk: one PCI device per disk, targets `vdX`.
    VirtioBlk,
    /// virtio-scsi: disks on a virtio-scsi controller, targets `sdX`; needed for `device='lun'`.
    VirtioScsi,
}

/// What the guest sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskDevice {
    /// An emulated disk.
    Disk,
    /// SCSI pass-through of a host block device (SCSI commands reach the LUN).
    Lun,
}

/// Where the disk's data is on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskSource {
    /// An image file.
    File(String),
    /// A host block device, e.g. `/dev/mapper/3600a0980…`.
    Block(String),
    /// A volume of a libvirt storage pool.
    Volume {
        /// Pool name.
        pool: PoolName,
        /// Volume name.
        volume: VolumeName,
    },
}

/// Host cache mode (`<driver cache=…>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheMode {
    /// O_DIRECT, guest write cache on: the choice for shared storage.
    None,
    /// O_DIRECT and O_DSYNC.
    DirectSync,
    /// Host page cache, O_DSYNC.
    WriteThrough,
    /// Host page cache (not safe for shared storage or migration).
    WriteBack,
}

impl CacheMode {
    fn as_str(self) -> &'static str {
        match self {
            CacheMode::None => "none",
            CacheMode::DirectSync => "directsync",
            CacheMode::WriteThrough => "writethrough",
            CacheMode::WriteBack => "writeback",
        }
    }

    fn is_direct(self) -> bool {
        matches!(self, CacheMode::None | CacheMode::DirectSync)
    }
}

/// Host I/O mode (`<driver io=…>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IoMode {
    /// Linux native AIO (needs an O_DIRECT cache mode).
    Native,
    /// A thread pool.
    Threads,
    /// io_uring.
    IoUring,
}

impl IoMode {
    fn as_str(self) -> &'static str {
        match self {
            IoMode::Native => "native",
            IoMode::Threads => "threads",
            IoMode::IoUring => "io_uring",
        }
    }
}

/// A `<disk>` element of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskDef {
    /// Host side.
    pub source: DiskSource,
    /// Guest bus.
    pub bus: DiskBus,
    /// Disk or LUN pass-through.
    pub device: DiskDevice,
    /// Guest target name (`vda`, `sdb`).
    pub target: String,
    /// Image format the driver opens.
    pub format: VolumeFormat,
    /// Host cache mode.
    pub cache: CacheMode,
    /// Host I/O mode.
    pub io: IoMode,
    /// Several VMs may open the disk at once (cluster file systems).
    pub shareable: bool,
    /// Guest-visible serial.
    pub serial: Option<String>,
    /// For LUN pass-through: let libvirt's pr-helper manage SCSI persistent reservations.
    pub managed_reservations: bool,
}

impl DiskDef {
    /// A virtio-blk disk over a pool volume, with shared-storage defaults.
    pub fn virtio_blk_volume(
        pool: PoolName,
        volume: VolumeName,
        target: impl Into<String>,
        format: VolumeFormat,
    ) -> Self {
        DiskDef {
            source: DiskSource::Volume { pool, volume },
            bus: DiskBus::VirtioBlk,
            device: DiskDevice::Disk,
            target: target.into(),
            format,
            cache: CacheMode::None,
            io: IoMode::Native,
            shareable: false,
            serial: None,
            managed_reservations: false,
        }
    }

    /// A virtio-scsi disk over a pool volume, with shared-storage defaults.
    pub fn virtio_scsi_volume(
        pool: PoolName,
        volume: VolumeName,
        target: impl Into<String>,
        format: VolumeFormat,
    ) -> Self {
        DiskDef {
            bus: DiskBus::VirtioScsi,
            ..Self::virtio_blk_volume(pool, volume, target, format)
        }
    }

    /// `device='lun'` pass-through of a host block device (typically a multipath map) over
    /// virtio-scsi, shareable, with managed persistent reservations.
    pub fn lun_passthrough(device_path: impl Into<String>, target: impl Into<String>) -> Self {
        DiskDef {
            source: DiskSource::Block(device_path.into()),
            bus: DiskBus::VirtioScsi,
            device: DiskDevice::Lun,
            target: target.into(),
            format: VolumeFormat::Raw,
            cache: CacheMode::None,
            io: IoMode::Native,
            shareable: true,
            serial: None,
            managed_reservations: true,
        }
    }

    fn invalid(&self, field: &'static str, problem: &'static str) -> Error {
        Error::InvalidDefinition {
            subject: format!("disk {}", self.target),
            field,
            problem,
        }
    }

    /// Checks the combination before it is handed to libvirt.
    pub fn validate(&self) -> Result<(), Error> {
        let prefix = match self.bus {
            DiskBus::VirtioBlk => "vd",
            DiskBus::VirtioScsi => "sd",
        };
        let suffix = self.target.strip_prefix(prefix).unwrap_or("");
        if suffix.is_empty() || !suffix.chars().all(|c| c.is_ascii_lowercase()) {
            return Err(self.invalid("target", "virtio-blk targets are vdX, virtio-scsi sdX"));
        }
        let path_ok = |p: &str| p.starts_with('/') && !p.chars().any(char::is_control);
        match &self.source {
            DiskSource::File(p) | DiskSource::Block(p) if !path_ok(p) => {
                return Err(self.invalid("source", "must be an absolute path"))
            }
            _ => {}
        }
        if self.device == DiskDevice::Lun {
            if self.bus != DiskBus::VirtioScsi {
                return Err(self.invalid("bus", "device='lun' needs virtio-scsi"));
            }
            if !matches!(self.source, DiskSource::Block(_)) {
                return Err(self.invalid("source", "device='lun' needs a host block device"));
            }
            if self.format != VolumeFormat::Raw {
                return Err(self.invalid("format", "device='lun' is raw"));
            }
        } else if self.managed_reservations {
            return Err(self.invalid(
                "managed_reservations",
                "persistent reservations need device='lun'",
            ));
        }
        if self.io == IoMode::Native && !self.cache.is_direct() {
            return Err(self.invalid("io", "io='native' needs cache 'none' or 'directsync'"));
        }
        if self.shareable && !self.cache.is_direct() {
            return Err(self.invalid(
                "cache",
                "a shareable disk needs cache 'none' or 'directsync'",
            ));
        }
        if let Some(serial) = &self.serial {
            if serial.is_empty()
                || serial.len() > 20
                || !serial
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(self.invalid("serial", "1-20 characters of [A-Za-z0-9._-]"));
            }
        }
        Ok(())
    }

    /// Validates and renders the `<disk>` element.
    pub fn to_xml(&self) -> Result<String, Error> {
        self.validate()?;
        let (kind, source) = match &self.source {
            DiskSource::File(p) => ("file", Element::new("source").attr("file", p.as_str())),
            DiskSource::Block(p) => ("block", Element::new("source").attr("dev", p.as_str())),
            DiskSource::Volume { pool, volume } => (
                "volume",
                Element::new("source")
                    .attr("pool", pool.as_str())
                    .attr("volume", volume.as_str()),
            ),
        };
        let source = if self.managed_reservations {
            source.child(Element::new("reservations").attr("managed", "yes"))
        } else {
            source
        };
        let device = match self.device {
            DiskDevice::Disk => "disk",
            DiskDevice::Lun => "lun",
        };
        let bus = match self.bus {
            DiskBus::VirtioBlk => "virtio",
            DiskBus::VirtioScsi => "scsi",
        };
        let mut disk = Element::new("disk")
            .attr("type", kind)
            .attr("device", device)
            .child(
                Element::new("driver")
                    .attr("name", "qemu")
                    .attr("type", self.format.as_str())
                    .attr("cache", self.cache.as_str())
                    .attr("io", self.io.as_str()),
            )
            .child(source)
            .child(
                Element::new("target")
                    .attr("dev", self.target.as_str())
                    .attr("bus", bus),
            );
        if self.shareable {
            disk = disk.child(Element::new("shareable"));
        }
        if let Some(serial) = &self.serial {
            disk = disk.child(Element::leaf("serial", serial.as_str()));
        }
        Ok(disk.render())
    }
}

/// The virtio-scsi controller a domain needs for [`DiskBus::VirtioScsi`] disks.
pub fn virtio_scsi_controller_xml(index: u32) -> String {
    Element::new("controller")
        .attr("type", "scsi")
        .attr("index", index.to_string())
        .attr("model", "virtio-scsi")
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtio_blk_volume_disk() {
        let d = DiskDef::virtio_blk_volume(
            PoolName::new("ds1").unwrap(),
            VolumeName::new("vm1.qcow2").unwrap(),
            "vda",
            VolumeFormat::Qcow2,
        );
        assert_eq!(
            d.to_xml().unwrap(),
            "<disk type=\"volume\" device=\"disk\">\n  \
             <driver name=\"qemu\" type=\"qcow2\" cache=\"none\" io=\"native\"/>\n  \
             <source pool=\"ds1\" volume=\"vm1.qcow2\"/>\n  \
             <target dev=\"vda\" bus=\"virtio\"/>\n</disk>"
        );
    }

    #[test]
    fn multipath_lun_passthrough() {
        let mut d =
            DiskDef::lun_passthrough("/dev/mapper/3600a098038303053453f463045727a6b", "sda");
        d.serial = Some("lun0".into());
        assert_eq!(
            d.to_xml().unwrap(),
            "<disk type=\"block\" device=\"lun\">\n  \
             <driver name=\"qemu\" type=\"raw\" cache=\"none\" io=\"native\"/>\n  \
             <source dev=\"/dev/mapper/3600a098038303053453f463045727a6b\">\n    \
             <reservations managed=\"yes\"/>\n  </source>\n  \
             <target dev=\"sda\" bus=\"scsi\"/>\n  <shareable/>\n  <serial>lun0</serial>\n</disk>"
        );
        assert_eq!(
            virtio_scsi_controller_xml(0),
            "<controller type=\"scsi\" index=\"0\" model=\"virtio-scsi\"/>"
        );
    }

    fn field_of(d: &DiskDef) -> &'static str {
        match d.validate() {
            Err(Error::InvalidDefinition { field, .. }) => field,
            other => panic!("expected InvalidDefinition, got {other:?}"),
        }
    }

    #[test]
    fn refuses_unsafe_combinations() {
        let mut lun_blk = DiskDef::lun_passthrough("/dev/mapper/x", "vda");
        lun_blk.bus = DiskBus::VirtioBlk;
        assert_eq!(field_of(&lun_blk), "bus");

        let mut lun_file = DiskDef::lun_passthrough("/dev/mapper/x", "sda");
        lun_file.source = DiskSource::File("/img".into());
        assert_eq!(field_of(&lun_file), "source");

        let mut cached_shared = DiskDef::lun_passthrough("/dev/mapper/x", "sda");
        cached_shared.cache = CacheMode::WriteBack;
        cached_shared.io = IoMode::Threads;
        assert_eq!(field_of(&cached_shared), "cache");

        let mut native_cached = DiskDef::lun_passthrough("/dev/mapper/x", "sda");
        native_cached.cache = CacheMode::WriteThrough;
        assert_eq!(field_of(&native_cached), "io");

        let wrong_target = DiskDef::lun_passthrough("/dev/mapper/x", "vdb");
        assert_eq!(field_of(&wrong_target), "target");
    }
}
