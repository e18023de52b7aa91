//! Volumes (`/api/storage/volumes`), FlexClones and volume patches.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{setters, string_enum, Links, NamedRef};

string_enum! {
    /// Volume style (`style`).
    pub enum VolumeStyle {
        /// A FlexVol (one aggregate).
        Flexvol => "flexvol",
        /// A FlexGroup (constituents on several aggregates).
        Flexgroup => "flexgroup",
    }
}

string_enum! {
    /// Volume type (`type`).
    pub enum VolumeType {
        /// Read-write.
        Rw => "rw",
        /// Data protection (SnapMirror destination).
        Dp => "dp",
        /// Load-sharing mirror.
        Ls => "ls",
    }
}

string_enum! {
    /// Volume state (`state`).
    pub enum VolumeState {
        /// Online.
        Online => "online",
        /// Offline.
        Offline => "offline",
        /// Restricted.
        Restricted => "restricted",
        /// Error.
        Error => "error",
        /// Mixed (FlexGroup constituents disagree).
        Mixed => "mixed",
    }
}

string_enum! {
    /// NAS security style (`nas.security_style`).
    pub enum SecurityStyle {
        /// UNIX permissions.
        Unix => "unix",
        /// NTFS ACLs.
        Ntfs => "ntfs",
        /// Mixed.
        Mixed => "mixed",
        /// Unified.
        Unified => "unified",
    }
}

string_enum! {
    /// Space guarantee (`guarantee.type`).
    pub enum GuaranteeType {
        /// Space reserved for the whole volume (thick).
        Volume => "volume",
        /// No reservation (thin).
        None => "none",
    }
}

string_enum! {
    /// Autosize mode (`autosize.mode`).
    pub enum AutosizeMode {
        /// Grow only.
        Grow => "grow",
        /// Grow and shrink.
        GrowShrink => "grow_shrink",
        /// Off.
        Off => "off",
    }
}

string_enum! {
    /// Efficiency mode for compression/dedupe (`efficiency.compression`, ...).
    pub enum EfficiencyMode {
        /// Inline only.
        Inline => "inline",
        /// Background only.
        Background => "background",
        /// Inline and background.
        Both => "both",
        /// Off.
        None => "none",
        /// FlexGroup constituents disagree.
        Mixed => "mixed",
    }
}

string_enum! {
    /// Tiering policy (`tiering.policy`).
    pub enum TieringPolicy {
        /// Tier all data.
        All => "all",
        /// Tier cold data.
        Auto => "auto",
        /// Backup (DP volumes).
        Backup => "backup",
        /// No tiering.
        None => "none",
        /// Tier cold snapshot blocks only.
        SnapshotOnly => "snapshot_only",
    }
}

string_enum! {
    /// Encryption state (`encryption.state`).
    pub enum EncryptionState {
        /// Encrypted.
        Encrypted => "encrypted",
        /// Encryption in progress.
        Encrypting => "encrypting",
        /// Partially encrypted.
        Partial => "partial",
        /// Rekeying.
        Rekeying => "rekeying",
        /// Not encrypted.
        Unencrypted => "unencrypted",
        /// No encryption (as some releases print it).
        None => "none",
    }
}

string_enum! {
    /// Encryption type (`encryption.type`).
    pub enum EncryptionType {
        /// No encryption.
        None => "none",
        /// Volume encryption (NVE).
        Volume => "volume",
        /// Aggregate encryption (NAE).
        Aggregate => "aggregate",
    }
}

string_enum! {
    /// Autonomous ransomware protection state (`anti_ransomware.state`).
    pub enum AntiRansomwareState {
        /// Off.
        Disabled => "disabled",
        /// Protecting.
        Enabled => "enabled",
        /// Learning mode.
        DryRun => "dry_run",
        /// Paused.
        Paused => "paused",
        /// Learning mode paused.
        DryRunPaused => "dry_run_paused",
        /// Being enabled.
        EnablePaused => "enable_paused",
        /// Being disabled.
        DisableInProgress => "disable_in_progress",
    }
}

/// Export policy reference (`nas.export_policy`): by `name` or numeric `id`.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExportPolicyRef {
    /// Policy name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Policy id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ExportPolicyRef {
    /// A reference by name.
    pub fn name(name: impl Into<String>) -> Self {
        Self {
            name: Some(name.into()),
            ..Self::default()
        }
    }
}

/// NAS settings of a volume (`nas`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeNas {
    /// Junction path, such as `/vol1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Security style.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_style: Option<SecurityStyle>,
    /// Export policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_policy: Option<ExportPolicyRef>,
    /// Owner UID of the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Owner GID of the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// UNIX permissions of the root, written as the decimal digits of the octal mode (755).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unix_permissions: Option<u32>,
    /// Parent volume of the junction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub junction_parent: Option<NamedRef>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Space guarantee (`guarantee`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeGuarantee {
    /// Guarantee type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<GuaranteeType>,
    /// Whether the guarantee is honored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub honored: Option<bool>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Autosize settings (`autosize`), bytes.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeAutosize {
    /// Mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<AutosizeMode>,
    /// Largest size autosize may grow to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<u64>,
    /// Smallest size autosize may shrink to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<u64>,
    /// Used-space percentage that triggers growth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grow_threshold: Option<u32>,
    /// Used-space percentage that triggers shrinking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shrink_threshold: Option<u32>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Storage efficiency settings (`efficiency`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeEfficiency {
    /// Compression mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<EfficiencyMode>,
    /// Deduplication mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedupe: Option<EfficiencyMode>,
    /// Cross-volume deduplication mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cross_volume_dedupe: Option<EfficiencyMode>,
    /// Compaction mode (`inline`, `none`, `mixed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compaction: Option<EfficiencyMode>,
    /// Efficiency policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<NamedRef>,
    /// Savings ratio (read-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Tiering settings (`tiering`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeTiering {
    /// Tiering policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<TieringPolicy>,
    /// Days before data counts as cold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_cooling_days: Option<u32>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Encryption settings (`encryption`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeEncryption {
    /// Whether encryption is requested/enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Encryption type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<EncryptionType>,
    /// Encryption state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<EncryptionState>,
    /// Key id (not secret: an identifier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Autonomous ransomware protection (`anti_ransomware`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeAntiRansomware {
    /// Protection state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<AntiRansomwareState>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// QoS settings (`qos`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeQos {
    /// QoS policy group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<NamedRef>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Snapshot space of a volume (`space.snapshot`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeSnapshotSpace {
    /// Percent of the volume reserved for snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserve_percent: Option<u32>,
    /// Bytes used by snapshots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Space usage of a volume (`space`), bytes.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeSpace {
    /// Provisioned size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Available space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<u64>,
    /// Used space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Snapshot reserve and usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<VolumeSnapshotSpace>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Inode counts (`files`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeFiles {
    /// Maximum number of files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<u64>,
    /// Files in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// FlexClone settings (`clone`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeClone {
    /// True for a FlexClone volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_flexclone: Option<bool>,
    /// Parent volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_volume: Option<NamedRef>,
    /// Parent snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_snapshot: Option<NamedRef>,
    /// Parent SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_svm: Option<NamedRef>,
    /// Set to true (PATCH) to split the clone from its parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_initiated: Option<bool>,
    /// Split progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_complete_percent: Option<u32>,
    /// Bytes the split will need.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_estimate: Option<u64>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// SnapLock settings of a volume (`snaplock`), mostly kept raw.
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumeSnaplock {
    /// SnapLock type (`non_snaplock`, `compliance`, `enterprise`).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Volume expiry time (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    /// Fields this crate does not model, kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A volume record.
///
/// ```
/// use ontap_client::models::{Volume, VolumeStyle};
///
/// let v: Volume = serde_json::from_str(r#"{"name":"vol1","style":"flexvol","size":1073741824}"#).unwrap();
/// assert_eq!(v.style, Some(VolumeStyle::Flexvol));
/// assert_eq!(v.size, Some(1 << 30));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    /// Volume UUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Volume name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owning SVM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub svm: Option<NamedRef>,
    /// Aggregates holding the volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregates: Option<Vec<NamedRef>>,
    /// Provisioned size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Style.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<VolumeStyle>,
    /// Type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<VolumeType>,
    /// State.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<VolumeState>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Creation time (ISO-8601).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_time: Option<String>,
    /// NAS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas: Option<VolumeNas>,
    /// Space guarantee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<VolumeGuarantee>,
    /// Autosize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autosize: Option<VolumeAutosize>,
    /// Storage efficiency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<VolumeEfficiency>,
    /// Tiering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiering: Option<VolumeTiering>,
    /// Encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<VolumeEncryption>,
    /// Ransomware protection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_ransomware: Option<VolumeAntiRansomware>,
    /// Whether snapshots of this volume can be locked (9.12+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_locking_enabled: Option<bool>,
    /// Snapshot policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_policy: Option<NamedRef>,
    /// QoS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<VolumeQos>,
    /// Space usage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<VolumeSpace>,
    /// Inode counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<VolumeFiles>,
    /// FlexClone information.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone: Option<VolumeClone>,
    /// SnapLock settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snaplock: Option<VolumeSnaplock>,
    /// HAL links.
    #[serde(rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Fields this crate does not model (metric, statistics...), kept for round trips.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Volume {
    /// True when this volume is a FlexClone.
    pub fn is_flexclone(&self) -> bool {
        self.clone
            .as_ref()
            .and_then(|c| c.is_flexclone)
            .unwrap_or(false)
    }

    /// The junction path, if mounted in the namespace.
    pub fn junction_path(&self) -> Option<&str> {
        self.nas.as_ref()?.path.as_deref()
    }
}

/// Generates the setters that take several values, or convert theirs, shared by
/// [`VolumeCreate`] and [`VolumePatch`] (one-value setters go through `setters!`). Each body
/// names the setters it offers, each with its own docs; the macro holds the one body of each.
macro_rules! volume_setters {
    () => {};
    ( $(#[$meta:meta])* export_policy $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn export_policy(mut self, name: impl Into<String>) -> Self {
            self.nas.get_or_insert_with(VolumeNas::default).export_policy =
                Some(ExportPolicyRef::name(name));
            self
        }
        $( volume_setters! { $($rest)* } )?
    };
    ( $(#[$meta:meta])* efficiency $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn efficiency(mut self, compression: EfficiencyMode, dedupe: EfficiencyMode) -> Self {
            let eff = self.efficiency.get_or_insert_with(VolumeEfficiency::default);
            eff.compression = Some(compression);
            eff.dedupe = Some(dedupe);
            self
        }
        $( volume_setters! { $($rest)* } )?
    };
    ( $(#[$meta:meta])* autosize $(, $($rest:tt)*)? ) => {
        $(#[$meta])*
        #[must_use]
        pub fn autosize(mut self, mode: AutosizeMode, maximum: u64) -> Self {
            self.autosize = Some(VolumeAutosize {
                mode: Some(mode),
                maximum: Some(maximum),
                ..VolumeAutosize::default()
            });
            self
        }
        $( volume_setters! { $($rest)* } )?
    };
}

/// Body of `POST /api/storage/volumes` for a new FlexVol or FlexGroup.
///
/// ```
/// use ontap_client::models::{VolumeCreate, GIB};
///
/// let body = VolumeCreate::flexvol("vol1", "svm1", "aggr1").size(10 * GIB).export_policy("p");
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({
///         "name": "vol1", "svm": {"name": "svm1"}, "aggregates": [{"name": "aggr1"}],
///         "size": 10737418240u64, "nas": {"export_policy": {"name": "p"}}
///     }),
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VolumeCreate {
    /// Volume name.
    pub name: String,
    /// Owning SVM.
    pub svm: NamedRef,
    /// Aggregates to place the volume (or FlexGroup constituents) on.
    pub aggregates: Vec<NamedRef>,
    /// Style.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<VolumeStyle>,
    /// FlexGroup constituents per aggregate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constituents_per_aggregate: Option<u32>,
    /// Size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Type (`dp` for a SnapMirror destination).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<VolumeType>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// NAS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas: Option<VolumeNas>,
    /// Space guarantee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<VolumeGuarantee>,
    /// Snapshot policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_policy: Option<NamedRef>,
    /// Storage efficiency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<VolumeEfficiency>,
    /// Tiering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiering: Option<VolumeTiering>,
    /// Encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<VolumeEncryption>,
    /// Ransomware protection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_ransomware: Option<VolumeAntiRansomware>,
    /// Snapshot locking (9.12+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_locking_enabled: Option<bool>,
    /// QoS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<VolumeQos>,
    /// Autosize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autosize: Option<VolumeAutosize>,
    /// Space settings (snapshot reserve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub space: Option<VolumeSpace>,
}

impl VolumeCreate {
    /// A FlexVol on one aggregate. `style` is left out, as in NetApp's examples: one
    /// aggregate makes a FlexVol.
    pub fn flexvol(
        name: impl Into<String>,
        svm: impl Into<NamedRef>,
        aggregate: impl Into<NamedRef>,
    ) -> Self {
        Self {
            name: name.into(),
            svm: svm.into(),
            aggregates: vec![aggregate.into()],
            ..Self::default()
        }
    }

    /// A FlexGroup spread over `aggregates`.
    pub fn flexgroup<A: Into<NamedRef> + Clone>(
        name: impl Into<String>,
        svm: impl Into<NamedRef>,
        aggregates: &[A],
    ) -> Self {
        Self {
            name: name.into(),
            svm: svm.into(),
            aggregates: aggregates.iter().cloned().map(Into::into).collect(),
            style: Some(VolumeStyle::Flexgroup),
            ..Self::default()
        }
    }

    setters! {
        /// Size in bytes.
        size: u64,
        /// FlexGroup constituents per aggregate.
        constituents_per_aggregate: u32,
        /// Volume type.
        kind: VolumeType,
        /// Comment.
        comment: into String,
        /// Snapshot policy by name (`none` disables scheduled snapshots).
        snapshot_policy: into NamedRef,
        /// Snapshot locking (9.12+).
        snapshot_locking_enabled: bool,
        /// Junction path (`nas.path`), such as `/vol1`.
        junction_path => nas.path: into String,
        /// Space guarantee: `GuaranteeType::None` for thin provisioning.
        guarantee => new guarantee.kind: GuaranteeType,
        /// Tiering policy.
        tiering_policy => new tiering.policy: TieringPolicy,
        /// Request volume encryption (`encryption.enabled`).
        encryption => new encryption.enabled: bool,
        /// Ransomware protection state.
        anti_ransomware => new anti_ransomware.state: AntiRansomwareState,
        /// QoS policy group by name.
        qos_policy => new qos.policy: into NamedRef,
    }

    fn nas_mut(&mut self) -> &mut VolumeNas {
        self.nas.get_or_insert_with(VolumeNas::default)
    }

    volume_setters! {
        /// Export policy by name (`nas.export_policy.name`).
        export_policy,
        /// Compression and deduplication modes.
        efficiency,
        /// Autosize mode and maximum size in bytes.
        autosize,
    }

    /// Security style (`nas.security_style`).
    #[must_use]
    pub fn security_style(mut self, style: SecurityStyle) -> Self {
        self.nas_mut().security_style = Some(style);
        self
    }

    /// Root owner and mode (`nas.uid`, `nas.gid`, `nas.unix_permissions`, mode as octal digits, e.g. 755).
    #[must_use]
    pub fn unix_owner(mut self, uid: u32, gid: u32, unix_permissions: u32) -> Self {
        let nas = self.nas_mut();
        nas.uid = Some(uid);
        nas.gid = Some(gid);
        nas.unix_permissions = Some(unix_permissions);
        self
    }

    /// Snapshot reserve percentage (`space.snapshot.reserve_percent`).
    #[must_use]
    pub fn snapshot_reserve_percent(mut self, percent: u32) -> Self {
        let space = self.space.get_or_insert_with(VolumeSpace::default);
        space.snapshot = Some(VolumeSnapshotSpace {
            reserve_percent: Some(percent),
            ..VolumeSnapshotSpace::default()
        });
        self
    }
}

/// Body of `POST /api/storage/volumes` that creates a FlexClone.
///
/// ```
/// use ontap_client::models::FlexCloneCreate;
///
/// let body = FlexCloneCreate::new("vol1_clone", "vs0", "vol1").parent_snapshot("snap1");
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({
///         "name": "vol1_clone", "svm": {"name": "vs0"},
///         "clone": {"is_flexclone": true, "parent_volume": {"name": "vol1"}, "parent_snapshot": {"name": "snap1"}}
///     }),
/// );
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlexCloneCreate {
    /// Clone name.
    pub name: String,
    /// SVM of the clone.
    pub svm: NamedRef,
    /// Clone settings (parent volume, snapshot, SVM).
    pub clone: VolumeClone,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// NAS settings (junction path, export policy).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas: Option<VolumeNas>,
    /// Space guarantee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<VolumeGuarantee>,
}

impl FlexCloneCreate {
    /// A clone named `name` in `svm` of `parent_volume` (from a new snapshot unless
    /// [`parent_snapshot`](Self::parent_snapshot) is set).
    pub fn new(
        name: impl Into<String>,
        svm: impl Into<NamedRef>,
        parent_volume: impl Into<NamedRef>,
    ) -> Self {
        Self {
            name: name.into(),
            svm: svm.into(),
            clone: VolumeClone {
                is_flexclone: Some(true),
                parent_volume: Some(parent_volume.into()),
                ..VolumeClone::default()
            },
            ..Self::default()
        }
    }

    /// Clone from this snapshot of the parent.
    #[must_use]
    pub fn parent_snapshot(mut self, snapshot: impl Into<NamedRef>) -> Self {
        self.clone.parent_snapshot = Some(snapshot.into());
        self
    }

    /// Parent lives in another SVM.
    #[must_use]
    pub fn parent_svm(mut self, svm: impl Into<NamedRef>) -> Self {
        self.clone.parent_svm = Some(svm.into());
        self
    }

    setters! {
        /// Comment.
        comment: into String,
        /// Junction path (`nas.path`).
        junction_path => nas.path: into String,
        /// Space guarantee.
        guarantee => new guarantee.kind: GuaranteeType,
    }
}

/// Body of `PATCH /api/storage/volumes/{uuid}`: only the fields set are sent.
///
/// ```
/// use ontap_client::models::{VolumePatch, TieringPolicy, GIB};
///
/// let body = VolumePatch::new().size(20 * GIB).tiering_policy(TieringPolicy::Auto);
/// assert_eq!(
///     serde_json::to_value(&body).unwrap(),
///     serde_json::json!({"size": 21474836480u64, "tiering": {"policy": "auto"}}),
/// );
/// assert_eq!(serde_json::to_string(&VolumePatch::split_clone()).unwrap(), r#"{"clone":{"split_initiated":true}}"#);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VolumePatch {
    /// New name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// State (online, offline, restricted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<VolumeState>,
    /// Comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// NAS settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nas: Option<VolumeNas>,
    /// Storage efficiency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub efficiency: Option<VolumeEfficiency>,
    /// Snapshot policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_policy: Option<NamedRef>,
    /// Tiering.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tiering: Option<VolumeTiering>,
    /// Encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<VolumeEncryption>,
    /// Ransomware protection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_ransomware: Option<VolumeAntiRansomware>,
    /// Snapshot locking (9.12+).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_locking_enabled: Option<bool>,
    /// Clone settings (`split_initiated`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clone: Option<VolumeClone>,
    /// QoS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<VolumeQos>,
    /// Autosize.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autosize: Option<VolumeAutosize>,
    /// Space guarantee.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guarantee: Option<VolumeGuarantee>,
}

impl VolumePatch {
    /// An empty patch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Patch that starts splitting a FlexClone from its parent.
    pub fn split_clone() -> Self {
        Self {
            clone: Some(VolumeClone {
                split_initiated: Some(true),
                ..VolumeClone::default()
            }),
            ..Self::default()
        }
    }

    setters! {
        /// Rename.
        name: into String,
        /// Resize (bytes).
        size: u64,
        /// Change state.
        state: VolumeState,
        /// Comment.
        comment: into String,
        /// Snapshot policy.
        snapshot_policy: into NamedRef,
        /// Snapshot locking (9.12+).
        snapshot_locking_enabled: bool,
        /// Start the clone split (`clone.split_initiated`).
        split_initiated => clone.split_initiated: bool,
        /// Tiering policy.
        tiering_policy => new tiering.policy: TieringPolicy,
        /// Enable or disable encryption.
        encryption => new encryption.enabled: bool,
        /// Ransomware protection state.
        anti_ransomware => new anti_ransomware.state: AntiRansomwareState,
        /// Junction path (`nas.path`); an empty string unmounts.
        junction_path => nas.path: into String,
        /// QoS policy group by name.
        qos_policy => new qos.policy: into NamedRef,
        /// Space guarantee.
        guarantee => new guarantee.kind: GuaranteeType,
    }

    volume_setters! {
        /// Compression and deduplication modes.
        efficiency,
        /// Export policy by name.
        export_policy,
        /// Autosize mode and maximum size in bytes.
        autosize,
    }
}
