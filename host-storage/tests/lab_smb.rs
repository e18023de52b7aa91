//! Lab tier: SMB 3.1.1 with multichannel against samba shares made by ontap-sim's kernel
//! backend, credentials only in the 0600 file. Run by `cargo xtask lab`.

mod lab_common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use host_storage::cifs::{
    undo_credentials, write_credentials, CifsCredentials, CifsMount, CifsOptions, SmbVersion,
};
use host_storage::files::{EntryId, HostRoot};
use host_storage::mount::Mounter;
use host_storage::{Change, HostName, SystemRunner};
use lab_common::{mountinfo_lines, payload, post, sim, step, Volume};
use ontap_client::SecretString;
use serde_json::json;

#[tokio::test]
#[ignore = "lab tier: needs the lab guest kernel (run by cargo xtask lab)"]
async fn lab_smb_multichannel_round_trip() -> Result<()> {
    step("start");
    let c = sim()?;
    let vol = Volume::create(&c, "lab_smb", "1G", true).await?;
    post(
        &c,
        "/api/protocols/cifs/shares",
        json!({"svm": {"name": "svm1"}, "name": "labshare", "path": "/lab_smb"}),
    )
    .await?;
    step("share created");

    let root = HostRoot::system();
    let id = EntryId::parse("labsmb")?;
    let user = std::env::var("LAB_SMB_USER").context("LAB_SMB_USER")?;
    let pass = std::env::var("LAB_SMB_PASSWORD").context("LAB_SMB_PASSWORD")?;
    let creds = CifsCredentials::new(&user, SecretString::from(pass.clone()), None)?;
    let cred_undo = write_credentials(&root, &id, &creds)?;
    let cred_file = root.path(host_storage::cifs::credentials_path(&id));
    assert_eq!(
        std::fs::metadata(&cred_file)?.permissions().mode() & 0o777,
        0o600
    );

    let target = Path::new("/tmp/lab/smb");
    let m = CifsMount::new(
        HostName::parse("127.0.1.1")?,
        "labshare",
        target,
        CifsOptions::new(SmbVersion::V3_1_1)
            .multichannel(true)
            .max_channels(2),
        Some(&id),
    )?;
    let mounter = Mounter::new(SystemRunner::new());
    let undo = mounter.mount_cifs(&m).await?;
    assert_eq!(undo.change, Change::Changed);
    let lines = mountinfo_lines(target)?;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let sb = lines[0].split(" - ").nth(1).unwrap_or_default().to_owned();
    assert!(sb.starts_with("cifs //127.0.1.1/labshare "), "{sb}");
    assert!(sb.contains("vers=3.1.1"), "{sb}");
    assert!(sb.contains("multichannel"), "{sb}");
    assert!(
        !lines[0].contains(&pass),
        "the password never shows in the mount table"
    );
    lab_common::keep_fixture(
        "mountinfo-cifs-multichannel.txt",
        "cat /proc/self/mountinfo",
        "cifs-utils 7.0",
        &format!("{}\n", lines[0]),
    )?;
    step("mounted");

    let data = payload("smb");
    std::fs::write(target.join("from-client.bin"), &data)?;
    std::fs::File::open(target.join("from-client.bin"))?.sync_all()?;
    assert_eq!(
        std::fs::read(vol.backend_dir().join("from-client.bin"))?,
        data
    );
    std::fs::write(vol.backend_dir().join("from-server.txt"), b"on the share\n")?;
    assert_eq!(
        std::fs::read(target.join("from-server.txt"))?,
        b"on the share\n"
    );

    assert_eq!(mounter.undo(&undo).await?, Change::Changed);
    assert!(mountinfo_lines(target)?.is_empty());
    assert_eq!(undo_credentials(&cred_undo)?, Change::Changed);
    assert!(!cred_file.exists());
    step("end");
    Ok(())
}
