//! NVMe resources: services, namespaces, subsystems, subsystem hosts and subsystem maps.
//!
//! Pure rules (NQNs, NSIDs, sizes) sit in [`rules`]; the handlers below apply them to the store.

/// Pure NVMe rules, independent of HTTP and of the record store.
pub(crate) mod rules {
    use crate::resources::san::rules::{parse_size, SizeInput, Violation};

    /// The target NQN ONTAP gives a subsystem:
    /// `nqn.1992-08.com.netapp:sn.<svm uuid hex>:subsystem.<name>`.
    pub(crate) fn target_nqn(svm_uuid: &str, subsystem: &str) -> String {
        let hex: String = svm_uuid.chars().filter(|c| *c != '-').collect();
        format!(
            "nqn.1992-08.com.netapp:sn.{}:subsystem.{subsystem}",
            hex.to_ascii_lowercase()
        )
    }

    /// Longest NQN the NVMe specification allows.
    pub(crate) const MAX_NQN_LEN: usize = 223;

    /// Validates a host NQN with ONTAP's codes (72089771/72089772/72089773).
    pub(crate) fn check_nqn(nqn: &str) -> Result<(), Violation> {
        const EXAMPLE: &str = "An example of a valid NQN is nqn.1992-01.com.example:string.";
        let Some(rest) = nqn.strip_prefix("nqn.") else {
            return Err(Violation::bad(72089772, format!("The NQN is invalid. Add the prefix 'nqn'. {EXAMPLE}")));
        };
        let date = rest.get(..7).unwrap_or(rest);
        let b = date.as_bytes();
        let date_ok = b.len() == 7
            && b[..4].iter().all(u8::is_ascii_digit)
            && b[4] == b'-'
            && b[5..].iter().all(u8::is_ascii_digit)
            && (1..=12).contains(&date[5..].parse::<u8>().unwrap_or(0));
        if !date_ok {
            return Err(Violation::bad(
                72089773,
                format!("The NQN is invalid. The date field must be formatted yyyy-mm. {EXAMPLE}"),
            ));
        }
        let after = &rest[7..];
        let qualifier = after.strip_prefix('.').unwrap_or("");
        if qualifier.is_empty() || qualifier.starts_with(':') || nqn.len() > MAX_NQN_LEN || nqn.contains(' ') {
            return Err(Violation::bad(
                72089771,
                format!("The NQN is invalid. A non-empty qualifier is required after the prefix. {EXAMPLE}"),
            ));
        }
        Ok(())
    }

    /// Checks a subsystem name (ONTAP code 72089709): 1..96 of `A-Z a-z 0-9 _ - .`.
    pub(crate) fn check_subsystem_name(name: &str) -> Result<(), Violation> {
        let ok = !name.is_empty()
            && name.len() <= 96
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(())
        } else {
            Err(Violation::bad(72089709, "The NVMe subsystem name contains an invalid character.").at("name"))
        }
    }

    /// Formats an NSID or ANA group id as ONTAP does: 8 zero-filled hex digits and `h`.
    pub(crate) fn hex_id(n: u32) -> String {
        format!("{n:08x}h")
    }

    /// Lowest NSID not in `used`, counting from 1 (NSID 0 is reserved by the NVMe spec).
    pub(crate) fn lowest_free_nsid(used: impl IntoIterator<Item = u32>) -> u32 {
        let used: std::collections::BTreeSet<u32> = used.into_iter().collect();
        (1..).find(|n| !used.contains(n)).unwrap_or(u32::MAX)
    }

    /// Makes a subsystem serial number ("wtJNKNKD-uPLAAAAAAAD" style: 20 characters); `pick(n)`
    /// must return a value in `0..n`.
    pub(crate) fn new_subsystem_serial(mut pick: impl FnMut(usize) -> usize) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..20)
            .map(|i| {
                if i == 8 {
                    '-'
                } else {
                    char::from(ALPHABET[pick(ALPHABET.len())])
                }
            })
            .collect()
    }

    /// Namespace `os_type` values.
    pub(crate) const NAMESPACE_OS_TYPES: &[&str] = &["aix", "linux", "vmware", "windows"];

    /// Subsystem `os_type` values.
    pub(crate) const SUBSYSTEM_OS_TYPES: &[&str] = &["aix", "linux", "vmware", "windows"];

    /// Default namespace block size (ONTAP uses 4 KiB unless asked for 512).
    pub(crate) const DEFAULT_BLOCK_SIZE: u64 = 4096;

    /// Checks a namespace block size: 512 or 4096.
    pub(crate) fn check_block_size(size: u64) -> Result<u64, Violation> {
        if size == 512 || size == 4096 {
            Ok(size)
        } else {
            Err(Violation::bad(
                262185,
                format!("Invalid value \"{size}\" for field \"space.block_size\" (512, 4096)."),
            )
            .at("space.block_size"))
        }
    }

    /// Checks a namespace size (ONTAP codes 72089722/72089723/72089724).
    pub(crate) fn check_namespace_size(input: &SizeInput<'_>) -> Result<u64, Violation> {
        use crate::resources::san::rules::{MAX_BLOCK_DEVICE_SIZE, MIN_BLOCK_DEVICE_SIZE};
        let size = parse_size(input).map_err(|()| {
            Violation::bad(262185, "An invalid size value was provided.").at("space.size")
        })?;
        if size < 0 {
            return Err(Violation::bad(72089722, "A negative size was provided for the NVMe namespace.").at("space.size"));
        }
        if size < i128::from(MIN_BLOCK_DEVICE_SIZE) {
            return Err(Violation::bad(72089723, "The specified size is too small for the NVMe namespace.").at("space.size"));
        }
        if size > i128::from(MAX_BLOCK_DEVICE_SIZE) {
            return Err(Violation::bad(72089724, "The specified size is too large for the NVMe namespace.").at("space.size"));
        }
        Ok(size as u64)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn target_nqn_matches_real_capture() {
            // shared/samples/nvme-show-topology-json_ontap.json.txt
            assert_eq!(
                target_nqn("48391d66-c0a6-11ec-aaa5-d039ea165514", "subsys_CLIENT116"),
                "nqn.1992-08.com.netapp:sn.48391d66c0a611ecaaa5d039ea165514:subsystem.subsys_CLIENT116"
            );
        }

        #[test]
        fn nqn_validation() {
            assert_eq!(check_nqn("nqn.2014-08.org.nvmexpress:uuid:12372496-59c4-4d1b-be09-74362c0c1afc"), Ok(()));
            assert_eq!(check_nqn("nqn.1992-01.com.example:string"), Ok(()));
            assert_eq!(check_nqn("iqn.1992-01.com.example:string").unwrap_err().code, 72089772);
            assert_eq!(check_nqn("nqn.92-01.com.example").unwrap_err().code, 72089773);
            assert_eq!(check_nqn("nqn.1992-13.com.example").unwrap_err().code, 72089773);
            assert_eq!(check_nqn("nqn.1992-01").unwrap_err().code, 72089771);
            assert_eq!(check_nqn("nqn.1992-01.").unwrap_err().code, 72089771);
            assert_eq!(check_nqn("nqn.").unwrap_err().code, 72089773);
        }

        #[test]
        fn subsystem_names() {
            assert_eq!(check_subsystem_name("subsys_CLIENT116"), Ok(()));
            assert_eq!(check_subsystem_name("a/b").unwrap_err().code, 72089709);
            assert_eq!(check_subsystem_name("").unwrap_err().code, 72089709);
        }

        #[test]
        fn ids() {
            assert_eq!(hex_id(1), "00000001h");
            assert_eq!(hex_id(0x103050), "00103050h");
            assert_eq!(lowest_free_nsid([]), 1);
            assert_eq!(lowest_free_nsid([1, 2, 4]), 3);
        }

        #[test]
        fn serial_shape() {
            let s = new_subsystem_serial(|n| 3 % n);
            assert_eq!(s, "DDDDDDDD-DDDDDDDDDDD");
            assert_eq!(s.len(), 20);
        }

        #[test]
        fn sizes_and_blocks() {
            assert_eq!(check_block_size(512), Ok(512));
            assert_eq!(check_block_size(1024).unwrap_err().code, 262185);
            assert_eq!(check_namespace_size(&SizeInput::Text("1G")), Ok(1 << 30));
            assert_eq!(check_namespace_size(&SizeInput::Int(-5)).unwrap_err().code, 72089722);
            assert_eq!(check_namespace_size(&SizeInput::Int(100)).unwrap_err().code, 72089723);
            assert_eq!(check_namespace_size(&SizeInput::Text("20T")).unwrap_err().code, 72089724);
        }
    }
}
