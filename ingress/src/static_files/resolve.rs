//! From a request target to the file to send: percent-decoding, refusal of traversal, the
//! canonical path kept inside the root, a directory's `index.html`, and the precompressed
//! sibling (`.br`, `.gz`) a client's `Accept-Encoding` allows.
//!
//! Owns no socket and reads only file metadata. A symlink is followed only when its target is
//! inside the root; `..`, NUL and backslash are refused before the file system is asked.

use std::path::{Path, PathBuf};

/// What a target names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A regular file inside the root (canonical).
    File(PathBuf),
    /// Nothing there (a `spa` answers with its `index.html`).
    Missing,
    /// Refused: 400 for an undecodable or malformed path, 404 for one that leads outside the
    /// root (never a fallback: it is not a client-side route).
    Refused(u16),
}

/// Maps a request target to a file inside `root` (which must be canonical).
#[must_use]
pub fn resolve(root: &Path, target: &str) -> Resolved {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let Some(decoded) = percent_decode(path) else {
        return Resolved::Refused(400);
    };
    if !decoded.starts_with('/') || decoded.contains(['\0', '\\']) {
        return Resolved::Refused(400);
    }
    let mut segments = Vec::new();
    for seg in decoded.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Resolved::Refused(404),
            s => segments.push(s),
        }
    }
    let mut path = root.to_path_buf();
    match walk(root, &mut path, &segments) {
        Walked::Out => Resolved::Refused(404),
        Walked::Missing => Resolved::Missing,
        Walked::File => Resolved::File(path),
        Walked::Dir => match walk(root, &mut path, &["index.html"]) {
            Walked::File => Resolved::File(path),
            Walked::Out => Resolved::Refused(404),
            Walked::Missing | Walked::Dir => Resolved::Missing,
        },
    }
}

/// Where a walk below the root ended.
enum Walked {
    File,
    Dir,
    Missing,
    Out,
}

/// Appends `segments` to `path` (canonical, inside `root`), one `lstat` each, leaving `path`
/// canonical. A symlink on the way is resolved and must stay inside `root`; the walk goes on
/// from where it points.
fn walk(root: &Path, path: &mut PathBuf, segments: &[&str]) -> Walked {
    let mut kind = Walked::Dir;
    for seg in segments {
        if !matches!(kind, Walked::Dir) {
            return Walked::Missing;
        }
        path.push(seg);
        let Ok(meta) = std::fs::symlink_metadata(&*path) else {
            return Walked::Missing;
        };
        let meta = if meta.file_type().is_symlink() {
            match inside(root, path) {
                Inside::Yes(target) => {
                    *path = target;
                    match std::fs::metadata(&*path) {
                        Ok(m) => m,
                        Err(_) => return Walked::Missing,
                    }
                }
                Inside::No => return Walked::Out,
                Inside::Missing => return Walked::Missing,
            }
        } else {
            meta
        };
        kind = if meta.is_file() {
            Walked::File
        } else if meta.is_dir() {
            Walked::Dir
        } else {
            return Walked::Missing;
        };
    }
    kind
}

enum Inside {
    Yes(PathBuf),
    Missing,
    No,
}

/// `path` canonical, if it exists and stays inside `root`.
fn inside(root: &Path, path: &Path) -> Inside {
    match path.canonicalize() {
        Ok(c) if c.starts_with(root) => Inside::Yes(c),
        Ok(_) => Inside::No,
        Err(_) => Inside::Missing,
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A content coding the server can send precompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Br,
    Gzip,
}

impl Coding {
    /// Preferred first.
    pub const ALL: [Self; 2] = [Self::Br, Self::Gzip];

    /// The `Content-Encoding` token.
    #[must_use]
    pub const fn token(self) -> &'static str {
        match self {
            Self::Br => "br",
            Self::Gzip => "gzip",
        }
    }

    /// The sibling file's suffix.
    #[must_use]
    pub const fn suffix(self) -> &'static str {
        match self {
            Self::Br => ".br",
            Self::Gzip => ".gz",
        }
    }
}

/// Whether `Accept-Encoding` allows `coding`: named (or `*`) with a q-value above zero; an
/// explicit entry for the coding wins over `*`.
#[must_use]
pub fn accepts(accept_encoding: &str, coding: Coding) -> bool {
    let mut star = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| {
                let (k, v) = p.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("q")
                    .then(|| v.trim().parse::<f32>().ok())
                    .flatten()
            })
            .next()
            .unwrap_or(1.0);
        let names_it = name.eq_ignore_ascii_case(coding.token())
            || (coding == Coding::Gzip && name.eq_ignore_ascii_case("x-gzip"));
        if names_it {
            return q > 0.0;
        }
        if name == "*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

/// The variants of `file` (canonical, inside `root`) on disk: which precompressed siblings
/// exist inside `root`, in preference order. A regular file beside a canonical one is inside
/// the root already (one `lstat`); only a symlink is resolved and checked.
#[must_use]
pub fn siblings(root: &Path, file: &Path) -> Vec<(Coding, PathBuf)> {
    Coding::ALL
        .iter()
        .filter_map(|&coding| {
            let mut name = file.as_os_str().to_owned();
            name.push(coding.suffix());
            let path = PathBuf::from(name);
            let meta = std::fs::symlink_metadata(&path).ok()?;
            if meta.is_file() {
                return Some((coding, path));
            }
            match inside(root, &path) {
                Inside::Yes(p) if meta.file_type().is_symlink() && p.is_file() => Some((coding, p)),
                _ => None,
            }
        })
        .collect()
}

/// The Content-Type for a file name.
#[must_use]
pub fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "xml" => "application/xml",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "gz" => "application/gzip",
        _ => "application/octet-stream",
    }
}

/// A served tree with ways out of it, for the traversal property ([`check_resolve`]): under
/// a fresh directory, `root/` holds `index.html`, `sub/a.css`, a symlink to a file outside
/// (`leak`), one to a directory outside (`out/`) and one inside (`inner`); `outside/secret`
/// is what no target may reach.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug)]
pub struct ProbeTree {
    base: PathBuf,
    /// The canonical served root.
    pub root: PathBuf,
}

#[cfg(any(test, feature = "fuzzing"))]
impl ProbeTree {
    /// Builds the tree in a new directory under the system's temporary directory.
    ///
    /// # Panics
    /// When the temporary directory cannot be written (a broken test machine).
    #[must_use]
    #[allow(clippy::unwrap_used, clippy::expect_used)]
    pub fn new() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = std::env::temp_dir().join(format!("skr8tr-probe-{}-{n}", std::process::id()));
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir_all(root.join("sub")).expect("a writable temporary directory");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("sub/a.css"), "x").unwrap();
        std::fs::write(outside.join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("leak")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("out")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/a.css"), root.join("inner")).unwrap();
        let root = root.canonicalize().unwrap();
        Self { base, root }
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Default for ProbeTree {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl Drop for ProbeTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The traversal property: whatever `target` is, [`resolve`] answers with a regular file
/// inside the root or with no file, never with anything outside it (the fuzz target
/// `static_path` and a proptest check it).
///
/// # Panics
/// When the property does not hold.
#[cfg(any(test, feature = "fuzzing"))]
pub fn check_resolve(tree: &ProbeTree, target: &str) {
    if let Resolved::File(path) = resolve(&tree.root, target) {
        assert!(
            path.starts_with(&tree.root),
            "{target:?} resolved to {} outside the root",
            path.display()
        );
        assert!(path.is_file(), "{target:?} resolved to a non-file");
        let canonical = path.canonicalize().ok();
        assert_eq!(canonical.as_ref(), Some(&path), "{target:?}: not canonical");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Targets made of the pieces traversal attempts use never leave the root.
        #[test]
        fn no_target_leaves_the_root(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just(".."), Just("."), Just("%2e%2e"), Just("%2E."), Just("%2f"), Just("%5c"),
                    Just("leak"), Just("out"), Just("inner"), Just("sub"), Just("a.css"),
                    Just("secret"), Just("index.html"), Just(""), Just("%00"), Just("//"),
                    Just("?x=../"), Just("#..")
                ],
                0..8,
            ),
        ) {
            let tree = ProbeTree::new();
            let target = format!("/{}", pieces.join("/"));
            check_resolve(&tree, &target);
        }
    }

    fn tree() -> (tempfile::TempDir, tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("index.html"), "hi").unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/a.css"), "x").unwrap();
        std::fs::create_dir(root.join("empty")).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/a.css"), root.join("inner")).unwrap();
        (dir, outside, root)
    }

    #[test]
    fn resolves_inside_the_root_only() {
        let (_d, _o, root) = tree();
        let file = |p: &str| Resolved::File(root.join(p));
        assert_eq!(resolve(&root, "/"), file("index.html"));
        assert_eq!(resolve(&root, "/sub/a.css?v=1"), file("sub/a.css"));
        assert_eq!(resolve(&root, "/inner"), file("sub/a.css"));
        assert_eq!(resolve(&root, "/sub/../index.html"), Resolved::Refused(404));
        assert_eq!(resolve(&root, "/%2e%2e/etc/passwd"), Resolved::Refused(404));
        assert_eq!(resolve(&root, "/link"), Resolved::Refused(404));
        assert_eq!(resolve(&root, "/dirlink/secret"), Resolved::Refused(404));
        assert_eq!(resolve(&root, "/missing"), Resolved::Missing);
        assert_eq!(resolve(&root, "/sub"), Resolved::Missing);
        assert_eq!(resolve(&root, "/empty/"), Resolved::Missing);
        assert_eq!(resolve(&root, "/a%00b"), Resolved::Refused(400));
        assert_eq!(resolve(&root, "/a\\b"), Resolved::Refused(400));
        assert_eq!(resolve(&root, "/%zz"), Resolved::Refused(400));
        assert_eq!(resolve(&root, "relative"), Resolved::Refused(400));
    }

    #[test]
    fn the_fuzz_seeds_are_what_their_names_say() {
        let tree = ProbeTree::new();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/static_path");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // Like the fuzz target: only UTF-8 inputs are targets.
            let Ok(target) = String::from_utf8(std::fs::read(&path).unwrap()) else {
                continue;
            };
            check_resolve(&tree, &target);
            let found = matches!(resolve(&tree.root, &target), Resolved::File(_));
            if name.starts_with("ok-") {
                assert!(found, "{name}: {target:?}");
            } else if name.starts_with("reject-") {
                assert!(!found, "{name}: {target:?}");
            }
            seen += 1;
        }
        assert!(seen >= 10, "only {seen} seeds");
    }

    #[test]
    fn accept_encoding_with_q_values_and_star() {
        assert!(accepts("gzip, deflate, br", Coding::Br));
        assert!(accepts("gzip;q=0.5", Coding::Gzip));
        assert!(!accepts("gzip;q=0", Coding::Gzip));
        assert!(!accepts("identity", Coding::Gzip));
        assert!(accepts("*", Coding::Br));
        assert!(!accepts("*, br;q=0", Coding::Br));
        assert!(accepts("x-gzip", Coding::Gzip));
        assert!(!accepts("", Coding::Gzip));
    }

    #[test]
    fn siblings_exist_inside_the_root_only() {
        let (_d, outside, root) = tree();
        std::fs::write(root.join("sub/a.css.br"), "b").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.join("sub/a.css.gz"))
            .unwrap();
        let v = siblings(&root, &root.join("sub/a.css"));
        assert_eq!(v, [(Coding::Br, root.join("sub/a.css.br"))]);
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type(Path::new("a.HTML")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.wasm")), "application/wasm");
        assert_eq!(content_type(Path::new("a")), "application/octet-stream");
    }
}
