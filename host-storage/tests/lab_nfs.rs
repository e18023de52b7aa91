//! Lab tier: NFS against knfsd exports made by ontap-sim's kernel backend, mounted by
//! host-storage's real code. Run by `cargo xtask lab` inside the guest.

mod lab_common;

use std::path::Path;

use anyhow::Result;
use host_storage::mount::Mounter;
use host_storage::nfs::{NfsMount, NfsOptions, NfsServers, NfsVersion};
use host_storage::{Change, HostName, SystemRunner};
use lab_common::{mountinfo_lines, open_default_policy, payload, sim, Volume};

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_nfs_v41_nconnect_round_trip() -> Result<()> {
    lab_common::step("start");
    let c = sim()?;
    open_default_policy(&c).await?;
    let vol = Volume::create(&c, "lab_nfs41", "1G", true).await?;
    let target = Path::new("/tmp/lab/nfs41");
    let m = NfsMount::new(
        NfsServers::One(HostName::parse("127.0.1.1")?),
        "/lab_nfs41",
        target,
        NfsOptions::new(NfsVersion::V4_1).nconnect(4),
    )?;
    lab_common::step("volume created");
    let mounter = Mounter::new(SystemRunner::new());
    let undo = mounter.mount_nfs(&m).await?;
    assert_eq!(undo.change, Change::Changed);
    assert_eq!(mounter.mount_nfs(&m).await?.change, Change::Unchanged);

    let lines = mountinfo_lines(target)?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let fields: Vec<&str> = lines[0]
        .split(" - ")
        .nth(1)
        .unwrap_or("")
        .split(' ')
        .collect();
    assert_eq!(fields[0], "nfs4");
    assert_eq!(fields[1], "127.0.1.1:/lab_nfs41");
    assert!(fields[2].contains("vers=4.1"), "{}", fields[2]);
    assert!(fields[2].contains("nconnect=4"), "{}", fields[2]);
    lab_common::keep_fixture(
        "mountinfo-nfs41-nconnect.txt",
        "cat /proc/self/mountinfo",
        "linux",
        &format!("{}\n", lines[0]),
    )?;

    // Client writes, server side reads the btrfs subvolume; and the other way.
    let data = payload("nfs41");
    std::fs::write(target.join("from-client.bin"), &data)?;
    std::fs::File::open(target.join("from-client.bin"))?.sync_all()?;
    assert_eq!(
        std::fs::read(vol.backend_dir().join("from-client.bin"))?,
        data
    );
    std::fs::write(
        vol.backend_dir().join("from-server.txt"),
        b"written on the filer\n",
    )?;
    assert_eq!(
        std::fs::read(target.join("from-server.txt"))?,
        b"written on the filer\n"
    );

    lab_common::step("data checked");
    assert_eq!(mounter.undo(&undo).await?, Change::Changed);
    lab_common::step("unmounted");
    assert!(mountinfo_lines(target)?.is_empty());
    assert!(!target.exists(), "the mount point it created is removed");
    lab_common::step("end");
    Ok(())
}

/// Established TCP connections from this host to `addr:2049` (from `/proc/net/tcp`).
fn nfs_connections_to(addr: [u8; 4]) -> Result<usize> {
    let text = std::fs::read_to_string("/proc/net/tcp")?;
    // Addresses are little-endian hex on x86: 127.0.1.2 is 0201007F; port 2049 is 0801.
    let want = format!(
        "{:02X}{:02X}{:02X}{:02X}:0801",
        addr[3], addr[2], addr[1], addr[0]
    );
    Ok(text
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == want && f[3] == "01"
        })
        .count())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_nfs_two_addresses_trunked() -> Result<()> {
    lab_common::step("start");
    let c = sim()?;
    open_default_policy(&c).await?;
    let vol = Volume::create(&c, "lab_nfstrunk", "1G", true).await?;
    let first = Path::new("/tmp/lab/trunk-a");
    let second = Path::new("/tmp/lab/trunk-b");
    let addrs = [HostName::parse("127.0.1.1")?, HostName::parse("127.0.1.2")?];
    let m = NfsMount::new(
        NfsServers::Trunked(addrs.to_vec()),
        "/lab_nfstrunk",
        first,
        NfsOptions::new(NfsVersion::V4_1),
    )?;
    assert_eq!(m.trunk_addresses(), &addrs[1..]);
    lab_common::step("volume created");
    let mounter = Mounter::new(SystemRunner::new());
    let undo_a = mounter.mount_nfs(&m).await?;
    assert_eq!(undo_a.change, Change::Changed);
    let opts = mountinfo_lines(first)?[0].clone();
    assert!(opts.contains("max_connect=2"), "{opts}");
    assert!(opts.contains("addr=127.0.1.1"), "{opts}");

    // The second address joins the same NFS client as a trunk.
    let trunk = NfsMount::new(
        NfsServers::One(addrs[1].clone()),
        "/lab_nfstrunk",
        second,
        m.options().clone(),
    )?;
    let undo_b = mounter.mount_nfs(&trunk).await?;
    assert_eq!(undo_b.change, Change::Changed);
    assert_eq!(nfs_connections_to([127, 0, 1, 1])?, 1);
    assert!(
        nfs_connections_to([127, 0, 1, 2])? >= 1,
        "no transport to the second address"
    );
    lab_common::keep_fixture(
        "mountinfo-nfs41-trunked.txt",
        "cat /proc/self/mountinfo",
        "linux",
        &format!(
            "{}\n{}\n",
            mountinfo_lines(first)?[0],
            mountinfo_lines(second)?[0]
        ),
    )?;

    let data = payload("trunk");
    std::fs::write(first.join("a.bin"), &data)?;
    std::fs::File::open(first.join("a.bin"))?.sync_all()?;
    assert_eq!(std::fs::read(second.join("a.bin"))?, data);
    assert_eq!(std::fs::read(vol.backend_dir().join("a.bin"))?, data);

    lab_common::step("data checked");
    assert_eq!(mounter.undo(&undo_b).await?, Change::Changed);
    assert_eq!(mounter.undo(&undo_a).await?, Change::Changed);
    assert!(mountinfo_lines(first)?.is_empty() && mountinfo_lines(second)?.is_empty());
    lab_common::step("end");
    Ok(())
}

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_nfs_autofs_mounts_on_access() -> Result<()> {
    use host_storage::autofs::{Autofs, Reload};
    use host_storage::files::{EntryId, HostRoot};

    lab_common::step("start");
    let c = sim()?;
    open_default_policy(&c).await?;
    let vol = Volume::create(&c, "lab_nfsauto", "1G", true).await?;
    std::fs::write(vol.backend_dir().join("seen.txt"), b"automounted\n")?;
    let target = Path::new("/tmp/lab/auto-nfs");
    let m = NfsMount::new(
        NfsServers::One(HostName::parse("127.0.1.2")?),
        "/lab_nfsauto",
        target,
        NfsOptions::new(NfsVersion::V4_2),
    )?;
    let autofs = Autofs::new(
        HostRoot::system(),
        SystemRunner::new(),
        EntryId::parse("kvmstorlab")?,
    )
    .timeout(60)
    .reload(Reload::Signal);
    lab_common::step("volume created");
    let undo = autofs.add_nfs(&EntryId::parse("auto-nfs")?, &m).await?;
    assert_eq!(undo.change, Change::Changed);

    // automount re-reads its maps on SIGHUP: wait for the trigger, then touch it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut read = None;
    while std::time::Instant::now() < deadline {
        if mountinfo_lines(target)?
            .iter()
            .any(|l| l.contains(" - autofs "))
        {
            read = Some(std::fs::read(target.join("seen.txt"))?);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(read.as_deref(), Some(&b"automounted\n"[..]));
    let lines = mountinfo_lines(target)?;
    assert_eq!(
        lines.len(),
        2,
        "autofs trigger and the NFS mount on it: {lines:?}"
    );
    assert!(
        lines[1].contains(" - nfs4 127.0.1.2:/lab_nfsauto "),
        "{}",
        lines[1]
    );
    lab_common::keep_fixture(
        "mountinfo-autofs-nfs.txt",
        "cat /proc/self/mountinfo",
        "autofs 5.1.8",
        &(lines.join("\n") + "\n"),
    )?;

    // Undo: the entry goes, automount is told, the NFS mount and the trigger go away.
    lab_common::step("automounted");
    let _ = lab_common::sh("umount", &[target.to_str().unwrap_or_default()]);
    assert_eq!(autofs.undo(&undo).await?, Change::Changed);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !mountinfo_lines(target)?.is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(mountinfo_lines(target)?, Vec::<String>::new());
    lab_common::step("end");
    Ok(())
}
