//! Typed storage volume definitions, rendered to and parsed from libvirt's volume XML.

use std::fmt;

use crate::error::{Error, XmlProblem};
use crate::names::VolumeName;
use crate::xml::Element;

/// Image format of a file volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VolumeFormat {
    /// Raw image (or a block device / LUN).
    Raw,
    /// qcow2 image.
    Qcow2,
}

impl VolumeFormat {
    /// The value libvirt uses in `<format type='…'/>`.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeFormat::Raw => "raw",
            VolumeFormat::Qcow2 => "qcow2",
        }
    }

    fn parse(s: &str) -> Option<VolumeFormat> {
        match s {
            "raw" => Some(VolumeFormat::Raw),
            "qcow2" => Some(VolumeFormat::Qcow2),
            _ => None,
        }
    }
}

impl fmt::Display for VolumeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much space a new volume takes up front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Allocation {
    /// Thin: allocation 0, space taken on write.
    Sparse,
    /// qcow2 only: metadata preallocated (`VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA`).
    Metadata,
    /// Fully allocated: allocation = capacity.
    Full,
}

/// The image a copy-on-write volume reads unwritten blocks from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackingStore {
    /// Path of the backing image.
    pub path: String,
    /// Format of the backing image.
    pub format: VolumeFormat,
}

/// A storage volume definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeDef {
    /// Volume name.
    pub name: VolumeName,
    /// Size seen by the guest, in bytes.
    pub capacity: u64,
    /// Image format.
    pub format: VolumeFormat,
    /// Up-front allocation.
    pub allocation: Allocation,
    /// Backing image (qcow2 overlays).
    pub backing: Option<BackingStore>,
}

impl VolumeDef {
    /// A sparse volume of `capacity` bytes.
    pub fn new(name: VolumeName, capacity: u64, format: VolumeFormat) -> Self {
        VolumeDef {
            name,
            capacity,
            format,
            allocation: Allocation::Sparse,
            backing: None,
        }
    }

    /// Sets the up-front allocation.
    pub fn with_allocation(mut self, allocation: Allocation) -> Self {
        self.allocation = allocation;
        self
    }

    /// Sets a backing store (the volume becomes a copy-on-write overlay).
    pub fn with_backing(mut self, path: impl Into<String>, format: VolumeFormat) -> Self {
        self.backing = Some(BackingStore {
            path: path.into(),
            format,
        });
        self
    }

    /// Checks sizes and combinations before libvirt is called.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field, problem| Error::InvalidDefinition {
            subject: format!("volume {}", self.name),
            field,
            problem,
        };
        if self.capacity == 0 {
            return Err(Error::ZeroSize {
                what: "volume capacity",
            });
        }
        if self.allocation == Allocation::Metadata && self.format != VolumeFormat::Qcow2 {
            return Err(invalid(
                "allocation",
                "metadata preallocation needs format qcow2",
            ));
        }
        if let Some(b) = &self.backing {
            if self.format != VolumeFormat::Qcow2 {
                return Err(invalid("backing", "a backing store needs format qcow2"));
            }
            if !b.path.starts_with('/') || b.path.chars().any(char::is_control) {
                return Err(invalid("backing.path", "must be an absolute path"));
            }
            if self.allocation == Allocation::Full {
                return Err(invalid(
                    "allocation",
                    "an overlay on a backing store cannot be fully preallocated",
                ));
            }
        }
        Ok(())
    }

    /// The libvirt create flags that go with this definition.
    pub(crate) fn create_flags(&self) -> u32 {
        match self.allocation {
            Allocation::Metadata => virt::sys::VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA,
            _ => 0,
        }
    }

    /// Renders libvirt volume XML.
    pub fn to_xml(&self) -> String {
        let allocation = match self.allocation {
            Allocation::Full => self.capacity,
            Allocation::Sparse | Allocation::Metadata => 0,
        };
        let format = |f: VolumeFormat| Element::new("format").attr("type", f.as_str());
        let mut target = Element::new("target").child(format(self.format));
        if self.format == VolumeFormat::Qcow2 {
            target = target.child(Element::leaf("compat", "1.1"));
        }
        Element::new("volume")
            .child(Element::leaf("name", self.name.as_str()))
            .child(Element::leaf("capacity", self.capacity.to_string()).attr("unit", "bytes"))
            .child(Element::leaf("allocation", allocation.to_string()).attr("unit", "bytes"))
            .child(target)
            .child_opt(self.backing.as_ref().map(|b| {
                Element::new("backingStore")
                    .child(Element::leaf("path", b.path.as_str()))
                    .child(format(b.format))
            }))
            .render()
    }

    /// Parses libvirt volume XML. The allocation is read back as `Full` when it equals the
    /// capacity, `Sparse` otherwise (libvirt does not record metadata preallocation).
    pub fn from_xml(xml: &str) -> Result<VolumeDef, Error> {
        let parsed = VolumeXml::parse(xml)?;
        let allocation = if parsed.allocation >= parsed.capacity && parsed.capacity > 0 {
            Allocation::Full
        } else {
            Allocation::Sparse
        };
        Ok(VolumeDef {
            name: parsed.name,
            capacity: parsed.capacity,
            format: parsed.format.unwrap_or(VolumeFormat::Raw),
            allocation,
            backing: parsed.backing,
        })
    }
}

/// What libvirt reports about an existing volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Volume name.
    pub name: VolumeName,
    /// Path on the host; for iscsi-direct (no host device) libvirt's name such as
    /// `ip-192.0.2.10:3260-iscsi-iqn.…-lun-1`.
    pub path: String,
    /// libvirt's unique key of the volume.
    pub key: String,
    /// Size seen by the guest, in bytes.
    pub capacity: u64,
    /// Space taken, in bytes.
    pub allocation: u64,
    /// Image format, if libvirt reports a known one.
    pub format: Option<VolumeFormat>,
    /// Backing store, for overlays.
    pub backing: Option<BackingStore>,
}

/// The parsed subset of a volume document.
pub(crate) struct VolumeXml {
    pub(crate) name: VolumeName,
    pub(crate) key: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) capacity: u64,
    pub(crate) allocation: u64,
    pub(crate) format: Option<VolumeFormat>,
    pub(crate) backing: Option<BackingStore>,
}

fn shape(element: &str, problem: XmlProblem) -> Error {
    Error::XmlShape {
        document: "volume",
        element: element.to_owned(),
        problem,
    }
}

/// Converts a libvirt `<capacity unit='…'>n</capacity>` to bytes.
fn scaled(el: &Element, what: &str) -> Result<u64, Error> {
    let n: u64 = el
        .text
        .trim()
        .parse()
        .map_err(|_| shape(what, XmlProblem::BadNumber))?;
    let unit = el.get_attr("unit").unwrap_or("bytes");
    let factor: u64 = match unit {
        "b" | "B" | "bytes" => 1,
        "KB" => 1_000,
        "k" | "K" | "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "M" | "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "G" | "GiB" => 1 << 30,
        "TB" => 1_000_000_000_000,
        "T" | "TiB" => 1 << 40,
        _ => return Err(shape(&format!("{what}@unit"), XmlProblem::UnknownValue)),
    };
    n.checked_mul(factor)
        .ok_or_else(|| shape(what, XmlProblem::BadNumber))
}

impl VolumeXml {
    pub(crate) fn parse(xml: &str) -> Result<VolumeXml, Error> {
        let root = Element::parse("volume", xml)?;
        if root.name != "volume" {
            return Err(shape(&root.name, XmlProblem::UnexpectedRoot));
        }
        let name = root
            .child_text("name")
            .ok_or_else(|| shape("name", XmlProblem::Missing))?;
        let capacity = root
            .find("capacity")
            .ok_or_else(|| shape("capacity", XmlProblem::Missing))?;
        let capacity = scaled(capacity, "capacity")?;
        let allocation = match root.find("allocation") {
            Some(a) => scaled(a, "allocation")?,
            None => 0,
        };
        let target = root.find("target");
        let format = target
            .and_then(|t| t.child_attr("format", "type"))
            .and_then(VolumeFormat::parse);
        let backing = match root.find("backingStore") {
            Some(b) => match b.child_text("path") {
                Some(path) if !path.trim().is_empty() => Some(BackingStore {
                    path: path.trim().to_owned(),
                    format: b
                        .child_attr("format", "type")
                        .and_then(VolumeFormat::parse)
                        .unwrap_or(VolumeFormat::Raw),
                }),
                _ => None,
            },
            None => None,
        };
        Ok(VolumeXml {
            name: VolumeName::new(name)?,
            key: root.child_text("key").map(str::to_owned),
            path: target.and_then(|t| t.child_text("path")).map(str::to_owned),
            capacity,
            allocation,
            format,
            backing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(name: &str) -> VolumeName {
        VolumeName::new(name).unwrap()
    }

    #[test]
    fn qcow2_overlay_renders_exactly() {
        let def = VolumeDef::new(vol("vm1.qcow2"), 1 << 30, VolumeFormat::Qcow2)
            .with_backing("/pool/base.qcow2", VolumeFormat::Qcow2);
        assert_eq!(
            def.to_xml(),
            "<volume>\n  <name>vm1.qcow2</name>\n  <capacity unit=\"bytes\">1073741824</capacity>\n  \
             <allocation unit=\"bytes\">0</allocation>\n  <target>\n    <format type=\"qcow2\"/>\n    \
             <compat>1.1</compat>\n  </target>\n  <backingStore>\n    <path>/pool/base.qcow2</path>\n    \
             <format type=\"qcow2\"/>\n  </backingStore>\n</volume>"
        );
        assert_eq!(VolumeDef::from_xml(&def.to_xml()).unwrap(), def);
    }

    #[test]
    fn full_raw_round_trips() {
        let def =
            VolumeDef::new(vol("r"), 64 << 20, VolumeFormat::Raw).with_allocation(Allocation::Full);
        let xml = def.to_xml();
        assert!(xml.contains("<allocation unit=\"bytes\">67108864</allocation>"));
        assert_eq!(VolumeDef::from_xml(&xml).unwrap(), def);
    }

    #[test]
    fn parses_the_libvirt_sample_with_units() {
        // samples/libvirt-vol-qcow2.xml.txt (libvirt tests/storagevolxml2xmlin/vol-qcow2-1.1.xml)
        let xml = r#"<volume>
  <name>OtherDemo.img</name>
  <key>/var/lib/libvirt/images/OtherDemo.img</key>
  <source>
  </source>
  <capacity unit="G">5</capacity>
  <allocation>294912</allocation>
  <target>
    <path>/var/lib/libvirt/images/OtherDemo.img</path>
    <format type='qcow2'/>
    <permissions>
      <mode>0644</mode>
      <owner>0</owner>
      <group>0</group>
      <label>unconfined_u:object_r:virt_image_t:s0</label>
    </permissions>
    <encryption format='qcow'>
      <secret type='passphrase' uuid='e78d4b51-a2af-485f-b0f5-afca709a80f4'/>
    </encryption>
    <features/>
  </target>
  <backingStore>
    <path>/var/lib/libvirt/images/BaseDemo.img</path>
    <format type='raw'/>
  </backingStore>
</volume>"#;
        let v = VolumeXml::parse(xml).unwrap();
        assert_eq!(v.name.as_str(), "OtherDemo.img");
        assert_eq!(v.capacity, 5 << 30);
        assert_eq!(v.allocation, 294_912);
        assert_eq!(v.format, Some(VolumeFormat::Qcow2));
        assert_eq!(
            v.path.as_deref(),
            Some("/var/lib/libvirt/images/OtherDemo.img")
        );
        assert_eq!(
            v.backing,
            Some(BackingStore {
                path: "/var/lib/libvirt/images/BaseDemo.img".into(),
                format: VolumeFormat::Raw
            })
        );
    }

    #[test]
    fn refuses_zero_size_and_bad_combinations() {
        let zero = VolumeDef::new(vol("z"), 0, VolumeFormat::Raw);
        assert!(matches!(
            zero.validate(),
            Err(Error::ZeroSize {
                what: "volume capacity"
            })
        ));
        let raw_overlay =
            VolumeDef::new(vol("o"), 1, VolumeFormat::Raw).with_backing("/b", VolumeFormat::Raw);
        assert!(matches!(
            raw_overlay.validate(),
            Err(Error::InvalidDefinition {
                field: "backing",
                ..
            })
        ));
        let raw_meta =
            VolumeDef::new(vol("m"), 1, VolumeFormat::Raw).with_allocation(Allocation::Metadata);
        assert!(matches!(
            raw_meta.validate(),
            Err(Error::InvalidDefinition {
                field: "allocation",
                ..
            })
        ));
        assert!(VolumeDef::new(vol("ok"), 1, VolumeFormat::Qcow2)
            .with_allocation(Allocation::Metadata)
            .validate()
            .is_ok());
    }
}
