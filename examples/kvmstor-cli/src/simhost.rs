//! A host whose side is simulated: files under a scratch root, a fake kernel for `mount`
//! and `umount`, libvirt's `test:///default`.
//!
//! Only ONTAP is real. This is what the tool's tests and the README's session use on a
//! machine without NFS or SMB clients; the names say so (`--sim-host-root`,
//! `add_simulated_host`), so it cannot be mistaken for a real attach.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use host_storage::{Command, Output, Runner};
use kvmstor::Host;

/// The mount table a fresh scratch root starts with.
pub const ROOT_MOUNT: &str = "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n";
/// The fstab a fresh scratch root starts with.
pub const FSTAB: &str = "UUID=1234 / ext4 defaults 0 1\n";
/// The autofs master map a fresh scratch root starts with.
pub const AUTO_MASTER: &str = "+dir:/etc/auto.master.d\n+auto.master\n";
/// The libvirt URI of simulated hosts.
pub const SIM_LIBVIRT_URI: &str = "test:///default";

/// Plays the kernel on a scratch root: `mount -t TYPE -o OPTS SOURCE TARGET` adds a line to
/// `ROOT/proc/self/mountinfo`, `umount TARGET` removes it; `systemctl` succeeds; every other
/// program fails with exit 127 (not simulated). Records each command line.
#[derive(Debug)]
pub struct SimKernelRunner {
    mountinfo: PathBuf,
    calls: Mutex<Vec<String>>,
}

impl SimKernelRunner {
    /// A fake kernel for the scratch root `root`.
    pub fn new(root: &Path) -> Self {
        SimKernelRunner {
            mountinfo: root.join("proc/self/mountinfo"),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The command lines run so far (secrets redacted as by [`Command`]'s `Display`).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn io_fail(&self, cmd: &Command, what: &str) -> host_storage::Result<Output> {
        cmd.check(Output::exit(32, "", format!("simulated kernel: {what}")))
    }
}

#[async_trait::async_trait]
impl Runner for SimKernelRunner {
    async fn run(&self, cmd: &Command) -> host_storage::Result<Output> {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(cmd.to_string());
        }
        let args: Vec<String> = cmd
            .get_args()
            .iter()
            .map(|a| a.expose().to_owned())
            .collect();
        let Ok(table) = std::fs::read_to_string(&self.mountinfo) else {
            return self.io_fail(cmd, "cannot read the scratch mount table");
        };
        match (cmd.program(), args.as_slice()) {
            ("mount", [_, fstype, _, opts, source, target]) => {
                let kind = if fstype == "nfs" {
                    "nfs4"
                } else {
                    fstype.as_str()
                };
                let line =
                    format!("900 22 0:99 / {target} rw,relatime - {kind} {source} rw,{opts}\n");
                if std::fs::write(&self.mountinfo, table + &line).is_err() {
                    return self.io_fail(cmd, "cannot write the scratch mount table");
                }
                Ok(Output::success(""))
            }
            ("umount", [target, ..]) => {
                let needle = format!(" {target} ");
                let kept: String = table
                    .lines()
                    .filter(|l| !l.contains(&needle))
                    .map(|l| format!("{l}\n"))
                    .collect();
                if std::fs::write(&self.mountinfo, kept).is_err() {
                    return self.io_fail(cmd, "cannot write the scratch mount table");
                }
                Ok(Output::success(""))
            }
            ("systemctl", _) => Ok(Output::success("")),
            (program, _) => cmd.check(Output::exit(
                127,
                "",
                format!("simulated host: {program} is not simulated"),
            )),
        }
    }
}

/// Prepares `root` as a host root (fstab, autofs master map, mount table, each only if
/// missing, so a later run sees the earlier run's state) and returns the simulated host
/// `name` with export address `address` and its runner.
pub fn simulated_host(
    name: &str,
    address: &str,
    root: &Path,
) -> std::io::Result<(Host, Arc<SimKernelRunner>)> {
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::create_dir_all(root.join("proc/self"))?;
    for (file, text) in [
        ("etc/fstab", FSTAB),
        ("etc/auto.master", AUTO_MASTER),
        ("proc/self/mountinfo", ROOT_MOUNT),
    ] {
        let p = root.join(file);
        if !p.exists() {
            std::fs::write(p, text)?;
        }
    }
    let runner = Arc::new(SimKernelRunner::new(root));
    let host = Host::new(name, runner.clone())
        .address(address)
        .libvirt_uri(SIM_LIBVIRT_URI)
        .root(root);
    Ok((host, runner))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mount_and_umount_edit_the_scratch_table() {
        let dir = tempfile::tempdir().unwrap();
        let (_host, runner) = simulated_host("kvm1", "192.0.2.1", dir.path()).unwrap();
        let table = dir.path().join("proc/self/mountinfo");
        runner
            .run(&Command::new("mount").args([
                "-t",
                "nfs",
                "-o",
                "vers=4.1",
                "10.0.0.1:/v",
                "/mnt/v",
            ]))
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&table).unwrap(),
            format!(
                "{ROOT_MOUNT}900 22 0:99 / /mnt/v rw,relatime - nfs4 10.0.0.1:/v rw,vers=4.1\n"
            )
        );
        runner
            .run(&Command::new("umount").arg("/mnt/v"))
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&table).unwrap(), ROOT_MOUNT);
        assert!(runner
            .run(&Command::new("iscsiadm").arg("-m"))
            .await
            .is_err());
        assert_eq!(runner.calls().len(), 3);
    }
}
