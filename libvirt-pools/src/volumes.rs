//! Volumes of one pool: list, create, clone, delete, resize, wipe, upload, download.
//!
//! Upload and download move the volume's bytes as stored: for a qcow2 volume that is the
//! qcow2 file, not the guest's view of the disk.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use virt::storage_vol::StorageVol;
use virt::stream::Stream;

use crate::client::{find_volume, get_pool, lv_err, Libvirt};
use crate::error::{Error, Operation, Result};
use crate::names::{Outcome, PoolName, VolumeName};
use crate::volume::{Allocation, VolumeDef, VolumeFormat, VolumeInfo, VolumeXml};

const CHUNK: usize = 256 * 1024;

/// Volume operations in one pool; from [`Libvirt::volumes`].
#[derive(Debug, Clone)]
pub struct Volumes {
    pub(crate) lv: Libvirt,
    pub(crate) pool: PoolName,
}

fn volume_info(vol: &StorageVol, pool: &PoolName, name: &str) -> Result<VolumeInfo> {
    let err = |op| lv_err(op, Some(pool.as_str()), Some(name));
    let xml = vol.xml_desc(0).map_err(err(Operation::VolumeInfo))?;
    let parsed = VolumeXml::parse(&xml)?;
    let path = match parsed.path {
        Some(p) => p,
        None => vol.path().map_err(err(Operation::VolumeInfo))?,
    };
    let key = match parsed.key {
        Some(k) => k,
        None => vol.key().map_err(err(Operation::VolumeInfo))?,
    };
    Ok(VolumeInfo {
        name: parsed.name,
        path,
        key,
        capacity: parsed.capacity,
        allocation: parsed.allocation,
        format: parsed.format,
        backing: parsed.backing,
    })
}

/// What in an existing volume differs from a definition (allocation is not compared: libvirt
/// reports what the file system did, not what was asked).
fn volume_differences(want: &VolumeDef, have: &VolumeInfo) -> Vec<&'static str> {
    let mut d = Vec::new();
    if want.capacity != have.capacity {
        d.push("capacity");
    }
    if have.format.is_some_and(|f| f != want.format) {
        d.push("format");
    }
    if want.backing != have.backing {
        d.push("backing");
    }
    d
}

impl Volumes {
    /// The pool these operations act on.
    pub fn pool(&self) -> &PoolName {
        &self.pool
    }

    async fn run<T, F>(&self, operation: Operation, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&virt::connect::Connect, &PoolName) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.lv.run(operation, move |conn| f(conn, &pool)).await
    }

    /// All volumes of the (running) pool, sorted by name.
    pub async fn list(&self) -> Result<Vec<VolumeInfo>> {
        self.run(Operation::ListVolumes, |conn, pool_name| {
            let pool = get_pool(conn, pool_name)?;
            if !pool.is_active().map_err(lv_err(
                Operation::PoolInfo,
                Some(pool_name.as_str()),
                None,
            ))? {
                return Err(Error::PoolInactive {
                    pool: pool_name.to_string(),
                });
            }
            let vols = pool.list_all_volumes(0).map_err(lv_err(
                Operation::ListVolumes,
                Some(pool_name.as_str()),
                None,
            ))?;
            let mut out = Vec::with_capacity(vols.len());
            for v in vols {
                let name = v.name().map_err(lv_err(
                    Operation::ListVolumes,
                    Some(pool_name.as_str()),
                    None,
                ))?;
                out.push(volume_info(&v, pool_name, &name)?);
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }

    /// One volume, or `None` when the pool has no such volume.
    pub async fn get(&self, name: &VolumeName) -> Result<Option<VolumeInfo>> {
        let name = name.clone();
        self.run(Operation::VolumeInfo, move |conn, pool_name| {
            let pool = get_pool(conn, pool_name)?;
            match find_volume(&pool, pool_name, name.as_str())? {
                Some(v) => volume_info(&v, pool_name, name.as_str()).map(Some),
                None => Ok(None),
            }
        })
        .await
    }

    /// One volume; [`Error::VolumeNotFound`] when missing.
    pub async fn info(&self, name: &VolumeName) -> Result<VolumeInfo> {
        self.get(name).await?.ok_or_else(|| Error::VolumeNotFound {
            pool: self.pool.to_string(),
            volume: name.to_string(),
        })
    }

    /// The volume XML as libvirt reports it.
    pub async fn xml(&self, name: &VolumeName) -> Result<String> {
        let name = name.clone();
        self.run(Operation::VolumeInfo, move |conn, pool_name| {
            let vol = require_volume(conn, pool_name, &name)?;
            vol.xml_desc(0).map_err(lv_err(
                Operation::VolumeInfo,
                Some(pool_name.as_str()),
                Some(name.as_str()),
            ))
        })
        .await
    }

    /// Creates the volume. `Unchanged` when one of that name exists with the same capacity,
    /// format and backing store; [`Error::VolumeConflict`] when it differs.
    pub async fn create(&self, def: &VolumeDef) -> Result<Outcome> {
        def.validate()?;
        let def = def.clone();
        self.run(Operation::CreateVolume, move |conn, pool_name| {
            let pool = get_pool(conn, pool_name)?;
            if let Some(existing) = find_volume(&pool, pool_name, def.name.as_str())? {
                return unchanged_or_conflict(&def, &existing, pool_name);
            }
            StorageVol::create_xml(&pool, &def.to_xml(), def.create_flags()).map_err(lv_err(
                Operation::CreateVolume,
                Some(pool_name.as_str()),
                Some(def.name.as_str()),
            ))?;
            tracing::info!(pool = %pool_name, volume = %def.name, "volume created");
            Ok(Outcome::Changed)
        })
        .await
    }

    /// Clones `source` into a new volume `target` with libvirt's own copy
    /// (`virStorageVolCreateXMLFrom`; `qemu-img convert` for file pools), in `format` or the
    /// source's format. `Unchanged` when `target` exists with the same capacity and format.
    pub async fn clone_volume(
        &self,
        source: &VolumeName,
        target: &VolumeName,
        format: Option<VolumeFormat>,
    ) -> Result<Outcome> {
        let (source, target) = (source.clone(), target.clone());
        self.run(Operation::CloneVolume, move |conn, pool_name| {
            let pool = get_pool(conn, pool_name)?;
            let src = require_volume(conn, pool_name, &source)?;
            let src_info = volume_info(&src, pool_name, source.as_str())?;
            let def = VolumeDef {
                name: target.clone(),
                capacity: src_info.capacity,
                format: format.or(src_info.format).unwrap_or(VolumeFormat::Raw),
                allocation: Allocation::Sparse,
                backing: None,
            };
            def.validate()?;
            if let Some(existing) = find_volume(&pool, pool_name, target.as_str())? {
                return unchanged_or_conflict(&def, &existing, pool_name);
            }
            StorageVol::create_xml_from(&pool, &def.to_xml(), &src, 0).map_err(lv_err(
                Operation::CloneVolume,
                Some(pool_name.as_str()),
                Some(target.as_str()),
            ))?;
            tracing::info!(pool = %pool_name, %source, %target, "volume cloned");
            Ok(Outcome::Changed)
        })
        .await
    }

    /// Deletes the volume. `Unchanged` when it does not exist.
    pub async fn delete(&self, name: &VolumeName) -> Result<Outcome> {
        let name = name.clone();
        self.run(Operation::DeleteVolume, move |conn, pool_name| {
            let pool = get_pool(conn, pool_name)?;
            let Some(vol) = find_volume(&pool, pool_name, name.as_str())? else {
                return Ok(Outcome::Unchanged);
            };
            vol.delete(virt::sys::VIR_STORAGE_VOL_DELETE_NORMAL)
                .map_err(lv_err(
                    Operation::DeleteVolume,
                    Some(pool_name.as_str()),
                    Some(name.as_str()),
                ))?;
            Ok(Outcome::Changed)
        })
        .await
    }

    /// Grows the volume to `capacity` bytes. `Unchanged` when it already has that capacity;
    /// shrinking is refused with [`Error::ShrinkRefused`].
    pub async fn resize(&self, name: &VolumeName, capacity: u64) -> Result<Outcome> {
        if capacity == 0 {
            return Err(Error::ZeroSize {
                what: "new capacity",
            });
        }
        let name = name.clone();
        self.run(Operation::ResizeVolume, move |conn, pool_name| {
            let vol = require_volume(conn, pool_name, &name)?;
            let current = volume_info(&vol, pool_name, name.as_str())?.capacity;
            if capacity == current {
                return Ok(Outcome::Unchanged);
            }
            if capacity < current {
                return Err(Error::ShrinkRefused {
                    pool: pool_name.to_string(),
                    volume: name.to_string(),
                    current,
                    requested: capacity,
                });
            }
            vol.resize(capacity, 0).map_err(lv_err(
                Operation::ResizeVolume,
                Some(pool_name.as_str()),
                Some(name.as_str()),
            ))?;
            Ok(Outcome::Changed)
        })
        .await
    }

    /// Overwrites the volume's data with zeroes (libvirt's default wipe algorithm).
    pub async fn wipe(&self, name: &VolumeName) -> Result<()> {
        let name = name.clone();
        self.run(Operation::WipeVolume, move |conn, pool_name| {
            require_volume(conn, pool_name, &name)?
                .wipe(0)
                .map_err(lv_err(
                    Operation::WipeVolume,
                    Some(pool_name.as_str()),
                    Some(name.as_str()),
                ))
        })
        .await
    }

    /// Streams `length` bytes from `reader` into the volume from offset 0; returns the bytes
    /// sent. The copy runs on the blocking pool in chunks of 256 KiB.
    pub async fn upload<R>(&self, name: &VolumeName, reader: R, length: u64) -> Result<u64>
    where
        R: Read + Send + 'static,
    {
        if length == 0 {
            return Err(Error::ZeroSize {
                what: "upload length",
            });
        }
        let name = name.clone();
        self.run(Operation::UploadVolume, move |conn, pool_name| {
            upload_blocking(conn, pool_name, &name, reader, length, None)
        })
        .await
    }

    /// Uploads a local file into the volume; returns the bytes sent.
    pub async fn upload_file(&self, name: &VolumeName, path: impl AsRef<Path>) -> Result<u64> {
        let name = name.clone();
        let path = path.as_ref().to_path_buf();
        self.run(Operation::UploadVolume, move |conn, pool_name| {
            let io_err = |source| Error::Io {
                operation: Operation::UploadVolume,
                pool: pool_name.to_string(),
                volume: name.to_string(),
                path: Some(path.clone()),
                source,
            };
            let file = std::fs::File::open(&path).map_err(io_err)?;
            let length = file.metadata().map_err(io_err)?.len();
            if length == 0 {
                return Err(Error::ZeroSize {
                    what: "upload length",
                });
            }
            upload_blocking(conn, pool_name, &name, file, length, Some(path.clone()))
        })
        .await
    }

    /// Streams the whole volume into `writer`; returns the writer and the bytes received.
    pub async fn download<W>(&self, name: &VolumeName, writer: W) -> Result<(W, u64)>
    where
        W: Write + Send + 'static,
    {
        let name = name.clone();
        self.run(Operation::DownloadVolume, move |conn, pool_name| {
            download_blocking(conn, pool_name, &name, writer, None)
        })
        .await
    }

    /// Downloads the whole volume into a local file (created or truncated); returns the bytes.
    pub async fn download_file(&self, name: &VolumeName, path: impl AsRef<Path>) -> Result<u64> {
        let name = name.clone();
        let path = path.as_ref().to_path_buf();
        self.run(Operation::DownloadVolume, move |conn, pool_name| {
            let file = std::fs::File::create(&path).map_err(|source| Error::Io {
                operation: Operation::DownloadVolume,
                pool: pool_name.to_string(),
                volume: name.to_string(),
                path: Some(path.clone()),
                source,
            })?;
            let (file, n) = download_blocking(conn, pool_name, &name, file, Some(path.clone()))?;
            file.sync_all().map_err(|source| Error::Io {
                operation: Operation::DownloadVolume,
                pool: pool_name.to_string(),
                volume: name.to_string(),
                path: Some(path.clone()),
                source,
            })?;
            Ok(n)
        })
        .await
    }
}

fn require_volume(
    conn: &virt::connect::Connect,
    pool_name: &PoolName,
    name: &VolumeName,
) -> Result<StorageVol> {
    let pool = get_pool(conn, pool_name)?;
    find_volume(&pool, pool_name, name.as_str())?.ok_or_else(|| Error::VolumeNotFound {
        pool: pool_name.to_string(),
        volume: name.to_string(),
    })
}

fn unchanged_or_conflict(
    def: &VolumeDef,
    existing: &StorageVol,
    pool_name: &PoolName,
) -> Result<Outcome> {
    let have = volume_info(existing, pool_name, def.name.as_str())?;
    let differences = volume_differences(def, &have);
    if differences.is_empty() {
        Ok(Outcome::Unchanged)
    } else {
        Err(Error::VolumeConflict {
            pool: pool_name.to_string(),
            volume: def.name.to_string(),
            differences,
        })
    }
}

fn upload_blocking<R: Read>(
    conn: &virt::connect::Connect,
    pool_name: &PoolName,
    name: &VolumeName,
    mut reader: R,
    length: u64,
    path: Option<PathBuf>,
) -> Result<u64> {
    let op = Operation::UploadVolume;
    let lv = |e| lv_err(op, Some(pool_name.as_str()), Some(name.as_str()))(e);
    let vol = require_volume(conn, pool_name, name)?;
    let stream = Stream::new(conn, 0).map_err(lv)?;
    vol.upload(&stream, 0, length, 0).map_err(lv)?;
    let mut buf = vec![0u8; CHUNK];
    let mut sent: u64 = 0;
    let result = (|| {
        while sent < length {
            let want = usize::try_from(length - sent).map_or(CHUNK, |r| r.min(CHUNK));
            let n = reader.read(&mut buf[..want]).map_err(|source| Error::Io {
                operation: op,
                pool: pool_name.to_string(),
                volume: name.to_string(),
                path: path.clone(),
                source,
            })?;
            if n == 0 {
                return Err(Error::Io {
                    operation: op,
                    pool: pool_name.to_string(),
                    volume: name.to_string(),
                    path: path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "reader ended before the announced length",
                    ),
                });
            }
            let mut off = 0;
            while off < n {
                let w = stream.send(&buf[off..n]).map_err(lv)?;
                // A blocking stream never returns -2 (would block); 0 would loop forever.
                off += usize::try_from(w).unwrap_or(0).max(1).min(n - off);
            }
            sent += n as u64;
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            stream.finish().map_err(lv)?;
            Ok(sent)
        }
        Err(e) => {
            let _ = stream.abort();
            Err(e)
        }
    }
}

fn download_blocking<W: Write>(
    conn: &virt::connect::Connect,
    pool_name: &PoolName,
    name: &VolumeName,
    mut writer: W,
    path: Option<PathBuf>,
) -> Result<(W, u64)> {
    let op = Operation::DownloadVolume;
    let lv = |e| lv_err(op, Some(pool_name.as_str()), Some(name.as_str()))(e);
    let vol = require_volume(conn, pool_name, name)?;
    let stream = Stream::new(conn, 0).map_err(lv)?;
    vol.download(&stream, 0, 0, 0).map_err(lv)?;
    let mut buf = vec![0u8; CHUNK];
    let mut received: u64 = 0;
    let result = (|| loop {
        let n = stream.recv(&mut buf).map_err(lv)?;
        if n <= 0 {
            return Ok(());
        }
        let n = n as usize;
        writer.write_all(&buf[..n]).map_err(|source| Error::Io {
            operation: op,
            pool: pool_name.to_string(),
            volume: name.to_string(),
            path: path.clone(),
            source,
        })?;
        received += n as u64;
    })();
    match result {
        Ok(()) => {
            stream.finish().map_err(lv)?;
            writer.flush().map_err(|source| Error::Io {
                operation: op,
                pool: pool_name.to_string(),
                volume: name.to_string(),
                path,
                source,
            })?;
            Ok((writer, received))
        }
        Err(e) => {
            let _ = stream.abort();
            Err(e)
        }
    }
}
