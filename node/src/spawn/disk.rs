//! What a VM's disk image is: its format, read with `qemu-img info` (or, without qemu-img, from
//! the image's first bytes), so QEMU is never told `raw` for a qcow2 or the reverse.
//!
//! An image with a backing file is refused: its backing path is resolved on this host, so an
//! image handed to the node could make a guest read any file QEMU can open (a known qcow2
//! attack). Flatten it first (`qemu-img convert`).

use std::io::Read as _;
use std::path::Path;
use std::process::Command;

/// Why a disk image cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("cannot read disk image {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("qemu-img cannot read disk image {path}: {reason}")]
    Info { path: String, reason: String },
    #[error(
        "disk image {path} has a backing file ({backing}): refused, as it would open a host path; flatten it with qemu-img convert"
    )]
    Backed { path: String, backing: String },
}

/// The format of the image at `path` (`raw`, `qcow2`, `vmdk`, …), by `qemu-img` found on
/// `qemu_img` when given, else by its magic bytes.
///
/// # Errors
/// [`DiskError`]: unreadable, or backed by another file.
pub fn format(path: &Path, qemu_img: Option<&Path>) -> Result<String, DiskError> {
    let shown = path.display().to_string();
    match qemu_img {
        Some(tool) => {
            let out = Command::new(tool)
                .args(["info", "--output=json", "--force-share"])
                .arg(path)
                .output()
                .map_err(|source| DiskError::Read {
                    path: shown.clone(),
                    source,
                })?;
            if !out.status.success() {
                return Err(DiskError::Info {
                    path: shown,
                    reason: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                });
            }
            from_info(&shown, &out.stdout)
        }
        None => {
            let mut head = [0u8; 16];
            let mut file = std::fs::File::open(path).map_err(|source| DiskError::Read {
                path: shown.clone(),
                source,
            })?;
            let n = file.read(&mut head).map_err(|source| DiskError::Read {
                path: shown.clone(),
                source,
            })?;
            from_magic(&shown, &head[..n])
        }
    }
}

/// The format in `qemu-img info --output=json` output.
fn from_info(path: &str, json: &[u8]) -> Result<String, DiskError> {
    let bad = |reason: &str| DiskError::Info {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|_| bad("its output is not JSON"))?;
    if let Some(backing) = v
        .get("full-backing-filename")
        .or_else(|| v.get("backing-filename"))
        .and_then(serde_json::Value::as_str)
    {
        return Err(DiskError::Backed {
            path: path.to_owned(),
            backing: backing.to_owned(),
        });
    }
    v.get("format")
        .and_then(serde_json::Value::as_str)
        .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
        .ok_or_else(|| bad("it names no format"))
}

/// qcow2 by its magic (`QFI\xfb`), refusing a backing file (header offset 8), else raw.
fn from_magic(path: &str, head: &[u8]) -> Result<String, DiskError> {
    if head.starts_with(b"QFI\xfb") {
        let backing = head
            .get(8..16)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_be_bytes);
        if backing != 0 {
            return Err(DiskError::Backed {
                path: path.to_owned(),
                backing: format!("at header offset {backing}"),
            });
        }
        return Ok("qcow2".to_owned());
    }
    Ok("raw".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_img_output_names_the_format_and_refuses_backing_files() {
        let qcow = br#"{"virtual-size": 1048576, "filename": "d.qcow2", "format": "qcow2"}"#;
        assert_eq!(from_info("d", qcow).unwrap(), "qcow2");
        let backed = br#"{"format": "qcow2", "backing-filename": "/etc/shadow"}"#;
        let err = from_info("d", backed).unwrap_err();
        assert!(matches!(err, DiskError::Backed { .. }), "{err}");
        assert!(err.to_string().contains("/etc/shadow"));
        assert!(from_info("d", b"{}").is_err());
        assert!(from_info("d", br#"{"format": "raw,x=1"}"#).is_err());
        assert!(from_info("d", b"not json").is_err());
    }

    #[test]
    fn magic_bytes_without_qemu_img() {
        let mut qcow = b"QFI\xfb\0\0\0\x03".to_vec();
        qcow.extend_from_slice(&[0; 8]);
        assert_eq!(from_magic("d", &qcow).unwrap(), "qcow2");
        let mut backed = b"QFI\xfb\0\0\0\x03".to_vec();
        backed.extend_from_slice(&72u64.to_be_bytes());
        assert!(from_magic("d", &backed).is_err());
        assert_eq!(from_magic("d", b"\0\0\0\0").unwrap(), "raw");
        assert_eq!(from_magic("d", b"").unwrap(), "raw");
    }
}
