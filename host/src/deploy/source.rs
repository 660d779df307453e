//! Checks an uploaded build context (a gzipped tar holding a Dockerfile) before anything is built.
//!
//! The archive is only ever streamed, never unpacked to disk. The tar crate's own unpacking
//! silently skips `..`, re-roots absolute paths and leaves outward symlinks behind, so instead of
//! trusting it we refuse any archive that tries such things and hand Docker a re-packed tar.
//! Every decompressed byte passes through one `Read::take`, so a gzip bomb costs at most
//! `max_unpacked_bytes` of inflation, whatever its headers claim.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read};

use flate2::read::MultiGzDecoder;
use tar::{Archive, Builder, Entry, EntryType, Header};

use super::dockerfile::{self, RemoteFetch};

const MIB: u64 = 1024 * 1024;
/// The two bytes every gzip member starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Longer member names are refused: Linux's PATH_MAX, and it bounds link resolution work.
const MAX_PATH_BYTES: usize = 4096;
/// Symlink hops allowed while resolving one link (Linux gives up at 40 too).
const MAX_LINK_HOPS: usize = 40;
/// Path components resolved across all links of one archive, so hostile link farms stay cheap.
const LINK_WORK_BUDGET: usize = 4_000_000;

/// How much an uploaded build context may weigh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLimits {
    /// Largest accepted upload, in gzipped bytes.
    pub max_upload_bytes: usize,
    /// Largest accepted decompressed tar stream (contents, headers and padding).
    pub max_unpacked_bytes: u64,
    /// Most members (files, directories, links) in the archive.
    pub max_entries: usize,
}

impl Default for SourceLimits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 10 * 1024 * 1024,
            max_unpacked_bytes: 100 * MIB,
            max_entries: 10_000,
        }
    }
}

/// What an accepted upload holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedSource {
    /// Members of any kind (files, directories, links).
    pub entries: usize,
    /// Regular files, hard links included.
    pub files: usize,
    /// Size of the decompressed tar stream.
    pub unpacked_bytes: u64,
}

/// Why an upload cannot be built. The message names the offending member; `code` and
/// `agent_action` feed the API error envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The gzipped upload is over `max_upload_bytes`. A unit variant: callers that refuse an
    /// oversized body before reading it all can name it without knowing the size.
    #[error("the gzipped upload is larger than the upload size limit")]
    TooLarge,
    /// Not gzip, not tar, corrupt or cut short.
    #[error("the upload is not a readable gzipped tar archive: {reason}")]
    Unreadable { reason: String },
    /// A member name that could land outside the build context.
    #[error("member `{path}` {reason}")]
    UnsafePath { path: String, reason: &'static str },
    /// A symlink or hard link that points outside the archive (or build directory).
    #[error("link `{path}` -> `{target}` {reason}")]
    LinkOutside {
        path: String,
        target: String,
        reason: &'static str,
    },
    /// A device, FIFO or other member that is not a file, directory or link.
    #[error("member `{path}` is a {kind}; only regular files, directories and links are allowed")]
    SpecialFile { path: String, kind: &'static str },
    /// The decompressed archive is over `max_unpacked_bytes`.
    #[error("the archive unpacks to more than {}", human(*.limit))]
    UnpackedTooLarge { limit: u64 },
    /// More than `max_entries` members.
    #[error("the archive has more than {limit} members")]
    TooManyEntries { limit: usize },
    /// No `Dockerfile` where the build starts.
    #[error("no `Dockerfile` at the root of {}", build_root(.dir))]
    MissingDockerfile { dir: String },
    /// The Dockerfile would make the engine fetch something over the network.
    #[error(transparent)]
    RemoteFetch(#[from] RemoteFetch),
}

impl SourceError {
    /// The stable code agents branch on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge => "tarball_too_large",
            Self::Unreadable { .. } => "invalid_tarball",
            Self::UnsafePath { .. } => "unsafe_tarball_path",
            Self::LinkOutside { .. } => "unsafe_tarball_link",
            Self::SpecialFile { .. } => "unsafe_tarball_entry",
            Self::UnpackedTooLarge { .. } => "tarball_unpacked_too_large",
            Self::TooManyEntries { .. } => "tarball_too_many_files",
            Self::MissingDockerfile { .. } => "missing_dockerfile",
            Self::RemoteFetch(_) => "dockerfile_remote_source",
        }
    }

    /// One sentence telling an agent how to fix its tarball.
    pub fn agent_action(&self) -> &'static str {
        match self {
            Self::TooLarge => {
                "Slim the upload so it fits the size limit: exclude node_modules, .git and build outputs (the build installs dependencies itself), or push a prebuilt image to a registry this host allows and send image=<reference> instead of the tarball."
            }
            Self::Unreadable { .. } => {
                "Send a complete gzip-compressed tar archive, made for example with `tar czf app.tar.gz -C <project-dir> .`."
            }
            Self::UnsafePath { .. } => {
                "Re-create the tarball from inside the project (`tar czf app.tar.gz -C <project-dir> .`) so every member is a plain relative path without `..`, a leading `/`, backslashes or control characters."
            }
            Self::LinkOutside { .. } => {
                "Replace links that point outside the project (or the build directory) with the files themselves, e.g. `tar czhf app.tar.gz --hard-dereference -C <project-dir> .`, or remove them."
            }
            Self::SpecialFile { .. } => {
                "Remove device files, FIFOs and sparse files from the tarball: a build context may hold only regular files, directories and links."
            }
            Self::UnpackedTooLarge { .. } => {
                "Exclude large or generated files (node_modules, .git, build outputs, data sets) so the unpacked tree fits the limit, or push a prebuilt image to a registry this host allows and send image=<reference> instead of the tarball."
            }
            Self::TooManyEntries { .. } => {
                "Exclude dependency and build directories (node_modules, .git, target, dist) so the tarball has fewer files; the build installs dependencies itself."
            }
            Self::MissingDockerfile { .. } => {
                "Add a `Dockerfile` at the root of the build directory (or point `build` at the directory that holds it) and tar from inside the project: `tar czf app.tar.gz -C <project-dir> .`."
            }
            Self::RemoteFetch(_) => {
                "Builds have no network access: put the file in the project and COPY it instead of `ADD <url>` or a git source, and start FROM an image without a registry host (the platform's base images)."
            }
        }
    }
}

/// Checks an upload without building anything: safe names, safe links, no special files,
/// within limits, and a `Dockerfile` at the root.
pub fn check(gzipped: &[u8], limits: &SourceLimits) -> Result<CheckedSource, SourceError> {
    let walked = Walk::new(limits, Vec::new(), false).run(gzipped)?;
    Ok(walked.checked)
}

/// The build context rooted at `dir` (a relative directory inside the archive, "" or "." = root),
/// as an uncompressed tar with paths made relative to `dir`, ready for Docker's build API.
/// Must contain `Dockerfile` at its root.
///
/// The whole archive passes the same checks as [`check`]; links inside `dir` must also stay
/// inside `dir`, since Docker sees nothing else. Members are re-packed with owner 0:0 and
/// permission bits only.
pub fn build_context(
    gzipped: &[u8],
    dir: &str,
    limits: &SourceLimits,
) -> Result<Vec<u8>, SourceError> {
    let dir = components(dir.as_bytes()).map_err(|reason| SourceError::UnsafePath {
        path: printable(dir.as_bytes()),
        reason,
    })?;
    let walked = Walk::new(limits, dir, true).run(gzipped)?;
    Ok(walked.context.unwrap_or_default())
}

/// The result of streaming an archive once.
struct Walked {
    checked: CheckedSource,
    /// The re-packed build context, when one was asked for.
    context: Option<Vec<u8>>,
}

/// State gathered while streaming the archive once.
struct Walk<'a> {
    limits: &'a SourceLimits,
    /// Components of the build directory; empty for the archive root.
    dir: Vec<String>,
    out: Option<Builder<Vec<u8>>>,
    entries: usize,
    files: usize,
    /// Sum of the sizes headers declare: lets an honest-looking bomb fail before inflating.
    declared_bytes: u64,
    /// Symlinks as (member path, raw target), checked once all of them are known.
    symlinks: Vec<(Vec<String>, String)>,
    /// Regular files and hard links so far: the only valid hard-link targets.
    earlier_files: HashSet<Vec<String>>,
    /// Whether `dir/Dockerfile` was seen.
    dockerfile: bool,
    /// The member a hard-linked `dir/Dockerfile` points at.
    linked_dockerfile: Option<Vec<String>>,
}

impl<'a> Walk<'a> {
    fn new(limits: &'a SourceLimits, dir: Vec<String>, repack: bool) -> Self {
        Self {
            limits,
            dir,
            out: repack.then(|| Builder::new(Vec::new())),
            entries: 0,
            files: 0,
            declared_bytes: 0,
            symlinks: Vec::new(),
            earlier_files: HashSet::new(),
            dockerfile: false,
            linked_dockerfile: None,
        }
    }

    fn run(mut self, gzipped: &[u8]) -> Result<Walked, SourceError> {
        if gzipped.len() > self.limits.max_upload_bytes {
            return Err(SourceError::TooLarge);
        }
        if !gzipped.starts_with(&GZIP_MAGIC) {
            return Err(SourceError::Unreadable {
                reason: "it is not gzip-compressed".into(),
            });
        }
        let limit = self.limits.max_unpacked_bytes;
        // One byte over the limit is how we tell "exactly at the limit" from "over it".
        let cap = limit.saturating_add(1);
        let mut inflated = MultiGzDecoder::new(gzipped).take(cap);
        let streamed = self
            .read_members(&mut inflated)
            // Reading to the end verifies the gzip checksum: corruption past the tar's
            // end marker would otherwise go unnoticed.
            .and_then(|()| io::copy(&mut inflated, &mut io::sink()).map_err(unreadable));
        // Checked first: hitting the cap can also look like a clean end or a truncated member.
        if inflated.limit() == 0 {
            return Err(SourceError::UnpackedTooLarge { limit });
        }
        streamed?;
        let unpacked_bytes = cap - inflated.limit();

        self.check_symlinks()?;
        if let Some(target) = &self.linked_dockerfile {
            dockerfile::check(&member_text(gzipped, target)?)?;
        }
        if !self.dockerfile {
            return Err(SourceError::MissingDockerfile {
                dir: self.dir.join("/"),
            });
        }
        let context = match self.out {
            Some(builder) => Some(builder.into_inner().map_err(unreadable)?),
            None => None,
        };
        Ok(Walked {
            checked: CheckedSource {
                entries: self.entries,
                files: self.files,
                unpacked_bytes,
            },
            context,
        })
    }

    fn read_members(&mut self, inflated: impl Read) -> Result<(), SourceError> {
        let mut archive = Archive::new(inflated);
        for entry in archive.entries().map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(SourceError::TooManyEntries {
                    limit: self.limits.max_entries,
                });
            }
            self.member(entry)?;
        }
        Ok(())
    }

    fn member(&mut self, mut entry: Entry<'_, impl Read>) -> Result<(), SourceError> {
        let kind = entry.header().entry_type();
        // `git archive` writes one of these (the commit id); it names no file.
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw_path = entry.path_bytes().into_owned();
        let display = || printable(&raw_path);
        let path = components(&raw_path).map_err(|reason| SourceError::UnsafePath {
            path: display(),
            reason,
        })?;
        if path.is_empty() && kind != EntryType::Directory {
            return Err(SourceError::UnsafePath {
                path: display(),
                reason: "names the archive root",
            });
        }
        self.declared_bytes = self.declared_bytes.saturating_add(entry.size());
        if self.declared_bytes > self.limits.max_unpacked_bytes {
            return Err(SourceError::UnpackedTooLarge {
                limit: self.limits.max_unpacked_bytes,
            });
        }
        // The member's path inside the build directory, if it is in there (and not the directory itself).
        let inside: Option<String> = path
            .strip_prefix(self.dir.as_slice())
            .filter(|rest| !rest.is_empty())
            .map(|rest| rest.join("/"));

        match kind {
            EntryType::Directory => {
                if let (Some(out), Some(rel)) = (self.out.as_mut(), inside) {
                    let mut header = repacked(EntryType::Directory, entry.header(), 0o755);
                    out.append_data(&mut header, rel, io::empty())
                        .map_err(unreadable)?;
                }
            }
            EntryType::Regular => {
                self.files += 1;
                self.earlier_files.insert(path);
                let is_dockerfile = inside.as_deref() == Some("Dockerfile");
                self.dockerfile |= is_dockerfile;
                if self.out.is_none() && !is_dockerfile {
                    return Ok(());
                }
                let size = entry.size();
                let mut data = Vec::with_capacity(size.min(MIB) as usize);
                entry.read_to_end(&mut data).map_err(unreadable)?;
                if data.len() as u64 != size {
                    return Err(SourceError::Unreadable {
                        reason: format!("member `{}` is cut short", display()),
                    });
                }
                if is_dockerfile {
                    dockerfile::check(&String::from_utf8_lossy(&data))?;
                }
                if let (Some(out), Some(rel)) = (self.out.as_mut(), inside) {
                    let mut header = repacked(EntryType::Regular, entry.header(), 0o644);
                    header.set_size(size);
                    out.append_data(&mut header, rel, data.as_slice())
                        .map_err(unreadable)?;
                }
            }
            EntryType::Symlink => {
                let raw_target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let outside = |reason| SourceError::LinkOutside {
                    path: display(),
                    target: printable(&raw_target),
                    reason,
                };
                let target = String::from_utf8(raw_target.clone())
                    .map_err(|_| outside("has a target that is not valid UTF-8"))?;
                if let Some(reason) = target_problem(&target) {
                    return Err(outside(reason));
                }
                if let (Some(out), Some(rel)) = (self.out.as_mut(), inside) {
                    let mut header = repacked(EntryType::Symlink, entry.header(), 0o777);
                    out.append_link(&mut header, rel, &target)
                        .map_err(unreadable)?;
                }
                self.symlinks.push((path, target));
            }
            EntryType::Link => {
                let raw_target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let outside = |reason| SourceError::LinkOutside {
                    path: display(),
                    target: printable(&raw_target),
                    reason,
                };
                let target =
                    components(&raw_target).map_err(|_| outside("leaves the archive root"))?;
                if !self.earlier_files.contains(&target) {
                    return Err(outside("does not name an earlier file in the archive"));
                }
                if inside.as_deref() == Some("Dockerfile") {
                    // Its text is an earlier member's, read again once the walk is done.
                    self.dockerfile = true;
                    self.linked_dockerfile = Some(target.clone());
                }
                self.files += 1;
                self.earlier_files.insert(path);
                if let (Some(out), Some(rel)) = (self.out.as_mut(), inside) {
                    let target = target
                        .strip_prefix(self.dir.as_slice())
                        .ok_or_else(|| outside("leaves the build directory"))?
                        .join("/");
                    let mut header = repacked(EntryType::Link, entry.header(), 0o644);
                    out.append_link(&mut header, rel, target)
                        .map_err(unreadable)?;
                }
            }
            other => {
                return Err(SourceError::SpecialFile {
                    path: display(),
                    kind: kind_name(other),
                });
            }
        }
        Ok(())
    }

    /// Every symlink must resolve inside the archive, and those in the build directory inside it.
    fn check_symlinks(&self) -> Result<(), SourceError> {
        let mut budget = LINK_WORK_BUDGET;
        let all: Vec<(&[String], &str)> = self
            .symlinks
            .iter()
            .map(|(path, target)| (path.as_slice(), target.as_str()))
            .collect();
        links_stay_inside(&all, &[], "leaves the archive root", &mut budget)?;
        if self.out.is_some() && !self.dir.is_empty() {
            let in_dir: Vec<(&[String], &str)> = all
                .into_iter()
                .filter(|(path, _)| path.len() > self.dir.len() && path.starts_with(&self.dir))
                .collect();
            links_stay_inside(
                &in_dir,
                &self.dir,
                "leaves the build directory",
                &mut budget,
            )?;
        }
        Ok(())
    }
}

/// Checks that each link in `links` (archive paths, all under `root`) resolves below `root`,
/// following the other links on the way the kernel would.
/// The text of the regular file at `path` (an archive already walked once).
fn member_text(gzipped: &[u8], path: &[String]) -> Result<String, SourceError> {
    let mut archive = Archive::new(MultiGzDecoder::new(gzipped));
    let mut text = Vec::new();
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let name = components(&entry.path_bytes()).unwrap_or_default();
        if entry.header().entry_type() == EntryType::Regular && name == path {
            text.clear();
            entry.read_to_end(&mut text).map_err(unreadable)?;
        }
    }
    Ok(String::from_utf8_lossy(&text).into_owned())
}

fn links_stay_inside(
    links: &[(&[String], &str)],
    root: &[String],
    reason: &'static str,
    budget: &mut usize,
) -> Result<(), SourceError> {
    let by_path: HashMap<Vec<&str>, &str> = links
        .iter()
        .map(|(path, target)| (relative(path, root), *target))
        .collect();
    for (path, target) in links {
        if !resolves_inside(&by_path, &relative(path, root), target, budget) {
            return Err(SourceError::LinkOutside {
                path: path.join("/"),
                target: printable(target.as_bytes()),
                reason,
            });
        }
    }
    Ok(())
}

fn relative<'p>(path: &'p [String], root: &[String]) -> Vec<&'p str> {
    path.iter().skip(root.len()).map(String::as_str).collect()
}

/// Whether following `target` from the directory holding `link` stays at or below the root.
/// Links met on the way are expanded, so `a -> sub/l/..` with `sub/l -> ..` is caught.
/// Anything too deep or too costly to resolve counts as outside.
fn resolves_inside(
    links: &HashMap<Vec<&str>, &str>,
    link: &[&str],
    target: &str,
    budget: &mut usize,
) -> bool {
    let mut pending: VecDeque<&str> = link[..link.len().saturating_sub(1)]
        .iter()
        .copied()
        .collect();
    if !plain_target(target) {
        return false;
    }
    pending.extend(target.split('/'));
    let mut at: Vec<&str> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match part {
            "" | "." => {}
            ".." => {
                if at.pop().is_none() {
                    return false;
                }
            }
            name => {
                at.push(name);
                // A link as the last component is checked on its own; only links we walk
                // *through* can change where later components lead.
                if pending.is_empty() {
                    continue;
                }
                if let Some(next) = links.get(&at) {
                    hops += 1;
                    if hops > MAX_LINK_HOPS || !plain_target(next) {
                        return false;
                    }
                    at.pop();
                    for part in next.split('/').rev() {
                        pending.push_front(part);
                    }
                }
            }
        }
    }
    true
}

/// A link target we are willing to resolve: relative, short, no NUL, control or backslash.
fn plain_target(target: &str) -> bool {
    target_problem(target).is_none()
}

/// Why a symlink target is refused before any resolving, if it is.
fn target_problem(target: &str) -> Option<&'static str> {
    if target.is_empty() {
        Some("has an empty target")
    } else if target.starts_with('/') {
        Some("leaves the archive root")
    } else if target.len() > MAX_PATH_BYTES || target.chars().any(|c| c.is_control() || c == '\\') {
        Some("has a target that is not a plain relative path")
    } else {
        None
    }
}

/// Splits a member name into its normal components, refusing anything that could land outside
/// the root. `./`, empty components and trailing slashes are normal and dropped.
fn components(raw: &[u8]) -> Result<Vec<String>, &'static str> {
    if raw.len() > MAX_PATH_BYTES {
        return Err("is longer than 4096 bytes");
    }
    if raw.contains(&0) {
        return Err("contains a NUL byte");
    }
    let text = std::str::from_utf8(raw).map_err(|_| "is not valid UTF-8")?;
    if text.chars().any(char::is_control) {
        return Err("contains a control character");
    }
    if text.contains('\\') {
        return Err("contains a backslash");
    }
    if text.starts_with('/') {
        return Err("is an absolute path");
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.is_empty() => return Err("leaves the archive root"),
            ".." => return Err("contains a `..` component"),
            name => parts.push(name.to_string()),
        }
    }
    Ok(parts)
}

/// A fresh header for the re-packed context: same kind, permission bits and mtime; owner 0:0.
fn repacked(kind: EntryType, source: &Header, default_mode: u32) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(source.mode().map_or(default_mode, |mode| mode & 0o777));
    header.set_mtime(source.mtime().unwrap_or(0));
    header.set_uid(0);
    header.set_gid(0);
    header.set_size(0);
    header
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "named pipe (FIFO)",
        EntryType::Continuous => "contiguous file",
        EntryType::GNUSparse => "sparse file",
        EntryType::GNULongName | EntryType::GNULongLink | EntryType::XHeader => {
            "stray extension header"
        }
        _ => "member of an unknown type",
    }
}

fn unreadable(error: io::Error) -> SourceError {
    SourceError::Unreadable {
        reason: error.to_string(),
    }
}

/// A member name fit for a message: lossy UTF-8, control characters escaped, at most 200 chars.
fn printable(raw: &[u8]) -> String {
    super::printable(&String::from_utf8_lossy(raw), 200)
}

/// Bytes, with MiB alongside when the limit is a round number of them (as the default is).
fn human(bytes: u64) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{bytes} bytes ({} MiB)", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn build_root(dir: &str) -> String {
    if dir.is_empty() {
        "the archive".into()
    } else {
        format!("build directory `{dir}`")
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    /// Writes one member with the name and link target copied byte for byte into the header,
    /// so hostile names the builder would refuse (or normalize) reach the archive.
    fn raw(tar: &mut Builder<Vec<u8>>, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) {
        let mut header = Header::new_gnu();
        header.set_entry_type(kind);
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.as_mut_bytes()[..name.len()].copy_from_slice(name);
        header.as_mut_bytes()[157..157 + link.len()].copy_from_slice(link);
        header.set_cksum();
        tar.append(&header, data).expect("append");
    }

    fn file(tar: &mut Builder<Vec<u8>>, name: &str, data: &[u8]) {
        raw(tar, EntryType::Regular, name.as_bytes(), b"", data);
    }

    fn dir(tar: &mut Builder<Vec<u8>>, name: &str) {
        raw(tar, EntryType::Directory, name.as_bytes(), b"", b"");
    }

    fn symlink(tar: &mut Builder<Vec<u8>>, name: &str, target: &str) {
        raw(
            tar,
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            b"",
        );
    }

    fn hardlink(tar: &mut Builder<Vec<u8>>, name: &str, target: &str) {
        raw(
            tar,
            EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            b"",
        );
    }

    /// A `tar czf app.tar.gz -C dir .` look-alike, plus whatever `extra` adds.
    fn app_tar(extra: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
        let mut tar = Builder::new(Vec::new());
        dir(&mut tar, "./");
        file(&mut tar, "./Dockerfile", b"FROM python:3.12\nCOPY . /app\n");
        dir(&mut tar, "./app/");
        file(&mut tar, "./app/main.py", b"print('hi')\n");
        extra(&mut tar);
        tar.into_inner().expect("finish")
    }

    fn gzip(tar: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(tar).expect("compress");
        encoder.finish().expect("compress")
    }

    fn app(extra: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
        gzip(&app_tar(extra))
    }

    fn refusal(gzipped: &[u8]) -> SourceError {
        check(gzipped, &SourceLimits::default()).expect_err("should be refused")
    }

    fn code_of(extra: impl FnOnce(&mut Builder<Vec<u8>>)) -> &'static str {
        refusal(&app(extra)).code()
    }

    fn members(tar: &[u8]) -> Vec<(EntryType, String, Option<String>, Vec<u8>)> {
        let mut archive = Archive::new(tar);
        let mut out = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8");
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8(l.into_owned()).expect("utf-8"));
            let kind = entry.header().entry_type();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("read");
            out.push((kind, path, link, data));
        }
        out
    }

    fn names(tar: &[u8]) -> Vec<String> {
        members(tar)
            .into_iter()
            .map(|(_, path, _, _)| path)
            .collect()
    }

    #[test]
    fn a_normal_app_passes_with_its_counts() {
        let tar = app_tar(|_| {});
        let checked = check(&gzip(&tar), &SourceLimits::default()).expect("accepted");
        assert_eq!(
            checked,
            CheckedSource {
                entries: 4,
                files: 2,
                unpacked_bytes: tar.len() as u64,
            }
        );
    }

    #[test]
    fn names_without_dot_slash_and_long_names_pass() {
        let mut tar = Builder::new(Vec::new());
        file(&mut tar, "Dockerfile", b"FROM scratch\n");
        let long = format!("{}file.txt", "deep/".repeat(40));
        let mut header = Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        // The builder writes a GNU long-name member for names over 100 bytes.
        tar.append_data(&mut header, &long, &b"abc"[..])
            .expect("long");
        let gzipped = gzip(&tar.into_inner().expect("finish"));
        let checked = check(&gzipped, &SourceLimits::default()).expect("accepted");
        assert_eq!((checked.entries, checked.files), (2, 2));
        let context = build_context(&gzipped, ".", &SourceLimits::default()).expect("context");
        assert_eq!(names(&context), vec!["Dockerfile".to_string(), long]);
    }

    #[test]
    fn git_archive_global_header_is_accepted() {
        let gzipped = app(|tar| {
            let record = b"52 comment=0123456789abcdef0123456789abcdef01234567\n";
            raw(
                tar,
                EntryType::XGlobalHeader,
                b"pax_global_header",
                b"",
                record,
            );
        });
        check(&gzipped, &SourceLimits::default()).expect("accepted");
    }

    #[test]
    fn an_upload_over_the_limit_is_too_large() {
        let gzipped = app(|_| {});
        let limits = SourceLimits {
            max_upload_bytes: gzipped.len() - 1,
            ..SourceLimits::default()
        };
        let error = check(&gzipped, &limits).expect_err("too large");
        assert_eq!(error.code(), "tarball_too_large");
        let limits = SourceLimits {
            max_upload_bytes: gzipped.len(),
            ..SourceLimits::default()
        };
        check(&gzipped, &limits).expect("exactly at the limit");
    }

    #[test]
    fn what_is_not_a_gzipped_tar_is_unreadable() {
        let tar = app_tar(|_| {});
        let gzipped = gzip(&tar);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("empty", Vec::new()),
            ("plain tar", tar.clone()),
            ("zip", b"PK\x03\x04 not a tarball".to_vec()),
            (
                "gzipped text",
                gzip(&b"hello, this is not a tar archive\n".repeat(40)),
            ),
            ("short gzipped text", gzip(b"hello")),
            ("cut gzip", gzipped[..gzipped.len() / 2].to_vec()),
            ("cut gzip trailer", gzipped[..gzipped.len() - 4].to_vec()),
            ("cut tar", gzip(&tar[..1024 + 100])),
        ];
        for (case, bytes) in cases {
            let error = refusal(&bytes);
            assert_eq!(error.code(), "invalid_tarball", "{case}: {error}");
        }
    }

    #[test]
    fn a_corrupted_checksum_is_unreadable() {
        let mut gzipped = app(|_| {});
        let crc_at = gzipped.len() - 8;
        gzipped[crc_at] ^= 0xff;
        assert_eq!(refusal(&gzipped).code(), "invalid_tarball");
    }

    #[test]
    fn unsafe_member_names_are_refused() {
        let cases: Vec<(&[u8], &str)> = vec![
            (b"/etc/x", "is an absolute path"),
            (b"../../etc/passwd", "leaves the archive root"),
            (b"./../x", "leaves the archive root"),
            (b"app/../../x", "contains a `..` component"),
            (b"app/../Dockerfile", "contains a `..` component"),
            (b"..\\..\\windows\\x", "contains a backslash"),
            (b"app/line\nbreak", "contains a control character"),
            (b"bad-\xff-utf8", "is not valid UTF-8"),
        ];
        for (name, reason) in cases {
            let error = code_and_error(|tar| raw(tar, EntryType::Regular, name, b"", b"x"));
            assert_eq!(error.code(), "unsafe_tarball_path", "{error}");
            assert!(
                matches!(&error, SourceError::UnsafePath { reason: r, .. } if *r == reason),
                "{error}"
            );
        }
    }

    fn code_and_error(extra: impl FnOnce(&mut Builder<Vec<u8>>)) -> SourceError {
        refusal(&app(extra))
    }

    #[test]
    fn unsafe_names_are_refused_on_directories_and_links_too() {
        assert_eq!(code_of(|tar| dir(tar, "../up/")), "unsafe_tarball_path");
        assert_eq!(
            code_of(|tar| symlink(tar, "/abs", "app")),
            "unsafe_tarball_path"
        );
        assert_eq!(
            code_of(|tar| hardlink(tar, "../x", "./Dockerfile")),
            "unsafe_tarball_path"
        );
    }

    #[test]
    fn the_message_names_the_member() {
        let error =
            code_and_error(|tar| raw(tar, EntryType::Regular, b"../../etc/passwd", b"", b"x"));
        assert_eq!(
            error.to_string(),
            "member `../../etc/passwd` leaves the archive root"
        );
        let error = code_and_error(|tar| raw(tar, EntryType::Regular, b"a\nb", b"", b"x"));
        assert_eq!(
            error.to_string(),
            "member `a\\nb` contains a control character"
        );
    }

    /// A GNU long-name member (type `L`) carrying `data` as the next member's name.
    fn gnu_long_name(tar: &mut Builder<Vec<u8>>, name: &[u8]) {
        raw(tar, EntryType::GNULongName, b"././@LongLink", b"", name);
    }

    /// A PAX extended header (type `x`) with one record.
    fn pax(tar: &mut Builder<Vec<u8>>, key: &str, value: &[u8]) {
        let body_len = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut total = body_len + 1;
        while total != body_len + total.to_string().len() {
            total = body_len + total.to_string().len();
        }
        let mut record = format!("{total} {key}=").into_bytes();
        record.extend_from_slice(value);
        record.push(b'\n');
        raw(tar, EntryType::XHeader, b"PaxHeader/x", b"", &record);
    }

    #[test]
    fn nul_bytes_in_extended_names_are_refused() {
        let via_gnu = code_and_error(|tar| {
            gnu_long_name(tar, b"app/evil\0/../../../etc/passwd\0");
            file(tar, "placeholder", b"x");
        });
        assert_eq!(via_gnu.code(), "unsafe_tarball_path");
        assert!(via_gnu.to_string().contains("NUL"), "{via_gnu}");
        let via_pax = code_and_error(|tar| {
            pax(tar, "path", b"app/a\0b");
            file(tar, "placeholder", b"x");
        });
        assert_eq!(via_pax.code(), "unsafe_tarball_path");
    }

    #[test]
    fn extended_names_are_checked_not_the_placeholder() {
        let error = code_and_error(|tar| {
            pax(tar, "path", b"../../etc/cron.d/x");
            file(tar, "harmless", b"x");
        });
        assert_eq!(
            error.to_string(),
            "member `../../etc/cron.d/x` leaves the archive root"
        );
        let error = code_and_error(|tar| {
            pax(tar, "linkpath", b"/etc/shadow");
            symlink(tar, "innocent", "app");
        });
        assert_eq!(error.code(), "unsafe_tarball_link");
    }

    #[test]
    fn symlinks_pointing_outside_are_refused() {
        let cases: Vec<(&str, &str)> = vec![
            ("evil", "/etc/passwd"),
            ("evil", "../../etc/passwd"),
            ("app/up", "../.."),
            ("app/up", "../app/../../x"),
            ("empty", ""),
            ("back", "..\\..\\x"),
        ];
        for (name, target) in cases {
            let error = code_and_error(|tar| symlink(tar, name, target));
            assert_eq!(
                error.code(),
                "unsafe_tarball_link",
                "{name} -> {target}: {error}"
            );
        }
        let error = code_and_error(|tar| symlink(tar, "./etc", "/etc"));
        assert_eq!(
            error.to_string(),
            "link `./etc` -> `/etc` leaves the archive root"
        );
    }

    #[test]
    fn symlinks_escaping_through_other_symlinks_are_refused() {
        // Lexically `sub/l/..` is `sub`, but `sub/l` is the root, so `..` leaves it.
        let error = code_and_error(|tar| {
            dir(tar, "sub/");
            symlink(tar, "sub/l", "..");
            symlink(tar, "m", "sub/l/..");
        });
        assert_eq!(error.code(), "unsafe_tarball_link");
        // Order does not matter: the chain is resolved once every link is known.
        let error = code_and_error(|tar| {
            symlink(tar, "m", "deep/l/../..");
            dir(tar, "deep/");
            symlink(tar, "deep/l", "../app");
        });
        assert_eq!(error.code(), "unsafe_tarball_link");
    }

    #[test]
    fn symlink_loops_are_refused() {
        let error = code_and_error(|tar| {
            symlink(tar, "a", "b/x");
            symlink(tar, "b", "a/x");
        });
        assert_eq!(error.code(), "unsafe_tarball_link");
    }

    #[test]
    fn symlinks_inside_the_tree_are_accepted() {
        let gzipped = app(|tar| {
            dir(tar, "./public/");
            file(tar, "./public/index.html", b"<h1>hi</h1>");
            symlink(tar, "./static", "./public");
            symlink(tar, "./app/up", "..");
            symlink(tar, "./app/index", "../static/index.html");
            symlink(tar, "./app/via", "up/app/main.py");
            symlink(tar, "./dangling", "not/there");
        });
        let checked = check(&gzipped, &SourceLimits::default()).expect("accepted");
        assert_eq!((checked.entries, checked.files), (11, 3));
    }

    #[test]
    fn hard_links_must_name_an_earlier_file() {
        let gzipped = app(|tar| hardlink(tar, "./app/copy.py", "./app/main.py"));
        let checked = check(&gzipped, &SourceLimits::default()).expect("accepted");
        assert_eq!(checked.files, 3);
        for target in ["/etc/passwd", "../../etc/passwd", "app/later.py", "app", ""] {
            let error = code_and_error(|tar| {
                hardlink(tar, "link", target);
                file(tar, "app/later.py", b"x");
            });
            assert_eq!(error.code(), "unsafe_tarball_link", "{target}: {error}");
        }
    }

    #[test]
    fn devices_fifos_and_other_types_are_refused() {
        let kinds = [
            EntryType::Char,
            EntryType::Block,
            EntryType::Fifo,
            EntryType::Continuous,
            EntryType::new(b'Z'),
        ];
        for kind in kinds {
            let error = code_and_error(|tar| raw(tar, kind, b"dev/thing", b"", b""));
            assert_eq!(error.code(), "unsafe_tarball_entry", "{kind:?}: {error}");
        }
        let error = code_and_error(|tar| raw(tar, EntryType::Char, b"./dev/null", b"", b""));
        assert_eq!(
            error.to_string(),
            "member `./dev/null` is a character device; only regular files, directories and links are allowed"
        );
    }

    #[test]
    fn a_gzip_bomb_is_refused_without_inflating_it() {
        const MEMBER: u64 = 200 * MIB;
        let mut header = Header::new_gnu();
        header.set_path("data.bin").expect("path");
        header.set_size(MEMBER);
        header.set_mode(0o644);
        header.set_cksum();
        // Gzip members may be concatenated (RFC 1952), so one compressed MiB of zeros repeated
        // 200 times is a 200 MiB member, built without compressing 200 MiB in a debug build.
        let mut bomb = gzip(header.as_bytes());
        let zeros = gzip(&vec![0u8; MIB as usize]);
        for _ in 0..MEMBER / MIB {
            bomb.extend_from_slice(&zeros);
        }
        assert!(bomb.len() < 300 * 1024, "bomb is {} bytes", bomb.len());

        let started = Instant::now();
        let error = refusal(&bomb);
        assert_eq!(error.code(), "tarball_unpacked_too_large");
        assert_eq!(
            error.to_string(),
            "the archive unpacks to more than 104857600 bytes (100 MiB)"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn inflated_bytes_count_even_where_no_header_declares_them() {
        let limits = SourceLimits {
            max_unpacked_bytes: 64 * 1024,
            ..SourceLimits::default()
        };
        // Zeros after the end-of-archive marker.
        let mut tar = app_tar(|_| {});
        tar.extend(std::iter::repeat_n(0u8, MIB as usize));
        let error = check(&gzip(&tar), &limits).expect_err("too large");
        assert_eq!(error.code(), "tarball_unpacked_too_large");
        // A huge GNU long name, which the tar crate would read into memory.
        let gzipped = app(|tar| {
            gnu_long_name(tar, &vec![b'a'; MIB as usize]);
            file(tar, "x", b"x");
        });
        let error = check(&gzipped, &limits).expect_err("too large");
        assert_eq!(error.code(), "tarball_unpacked_too_large");
    }

    #[test]
    fn the_unpacked_limit_is_inclusive() {
        let tar = app_tar(|_| {});
        let gzipped = gzip(&tar);
        let at = SourceLimits {
            max_unpacked_bytes: tar.len() as u64,
            ..SourceLimits::default()
        };
        check(&gzipped, &at).expect("exactly at the limit");
        build_context(&gzipped, "", &at).expect("exactly at the limit");
        let under = SourceLimits {
            max_unpacked_bytes: tar.len() as u64 - 1,
            ..SourceLimits::default()
        };
        let error = check(&gzipped, &under).expect_err("over");
        assert_eq!(error.code(), "tarball_unpacked_too_large");
        let error = build_context(&gzipped, "", &under).expect_err("over");
        assert_eq!(error.code(), "tarball_unpacked_too_large");
    }

    #[test]
    fn too_many_entries_are_refused() {
        let limits = SourceLimits {
            max_entries: 4,
            ..SourceLimits::default()
        };
        check(&app(|_| {}), &limits).expect("four members fit");
        let error = check(&app(|tar| file(tar, "one-more", b"")), &limits).expect_err("five");
        assert_eq!(error.code(), "tarball_too_many_files");
        assert_eq!(error.to_string(), "the archive has more than 4 members");
    }

    #[test]
    fn a_dockerfile_must_be_at_the_root() {
        let cases: Vec<Extra> = vec![
            Box::new(|tar| file(tar, "app/Dockerfile", b"FROM scratch")),
            Box::new(|tar| file(tar, "dockerfile", b"FROM scratch")),
            Box::new(|tar| dir(tar, "Dockerfile/")),
            Box::new(|tar| symlink(tar, "Dockerfile", "app/Dockerfile")),
        ];
        for case in cases {
            let mut tar = Builder::new(Vec::new());
            file(&mut tar, "app/Dockerfile", b"FROM scratch");
            case(&mut tar);
            let gzipped = gzip(&tar.into_inner().expect("finish"));
            let error = refusal(&gzipped);
            assert_eq!(error.code(), "missing_dockerfile", "{error}");
            assert_eq!(
                error.to_string(),
                "no `Dockerfile` at the root of the archive"
            );
        }
        let empty = gzip(&Builder::new(Vec::new()).into_inner().expect("finish"));
        assert_eq!(refusal(&empty).code(), "missing_dockerfile");
    }

    #[test]
    fn a_hard_linked_dockerfile_counts() {
        let mut tar = Builder::new(Vec::new());
        file(&mut tar, "docker/Dockerfile.prod", b"FROM scratch");
        hardlink(&mut tar, "Dockerfile", "docker/Dockerfile.prod");
        let gzipped = gzip(&tar.into_inner().expect("finish"));
        check(&gzipped, &SourceLimits::default()).expect("accepted");
    }

    #[test]
    fn a_dockerfile_that_fetches_urls_is_refused_even_hard_linked() {
        let fetching = b"FROM busybox\nADD http://127.0.0.1:8222/connz /x\n";
        let mut tar = Builder::new(Vec::new());
        file(&mut tar, "Dockerfile", fetching);
        let gzipped = gzip(&tar.into_inner().expect("finish"));
        let error = check(&gzipped, &SourceLimits::default()).expect_err("refused");
        assert_eq!(error.code(), "dockerfile_remote_source");

        let mut tar = Builder::new(Vec::new());
        file(&mut tar, "docker/Dockerfile.prod", fetching);
        hardlink(&mut tar, "Dockerfile", "docker/Dockerfile.prod");
        let gzipped = gzip(&tar.into_inner().expect("finish"));
        let error = check(&gzipped, &SourceLimits::default()).expect_err("refused");
        assert_eq!(error.code(), "dockerfile_remote_source");
        let error = build_context(&gzipped, ".", &SourceLimits::default()).expect_err("refused");
        assert_eq!(error.code(), "dockerfile_remote_source");
    }

    /// A way to add members to a test archive.
    type Extra = Box<dyn Fn(&mut Builder<Vec<u8>>)>;

    /// A monorepo: the service to build lives in `services/api`.
    fn monorepo(extra: impl FnOnce(&mut Builder<Vec<u8>>)) -> Vec<u8> {
        let mut tar = Builder::new(Vec::new());
        dir(&mut tar, "./");
        file(&mut tar, "./README.md", b"# mono\n");
        dir(&mut tar, "./shared/");
        file(&mut tar, "./shared/util.py", b"x = 1\n");
        dir(&mut tar, "./services/");
        dir(&mut tar, "./services/api/");
        file(&mut tar, "./services/api/Dockerfile", b"FROM python:3.12\n");
        dir(&mut tar, "./services/api/src/");
        file(&mut tar, "./services/api/src/main.py", b"print('api')\n");
        symlink(&mut tar, "./services/api/static", "src");
        hardlink(
            &mut tar,
            "./services/api/src/copy.py",
            "./services/api/src/main.py",
        );
        dir(&mut tar, "./services/web/");
        file(&mut tar, "./services/web/Dockerfile", b"FROM node:22\n");
        extra(&mut tar);
        gzip(&tar.into_inner().expect("finish"))
    }

    #[test]
    fn a_subdirectory_context_starts_at_the_subdirectory() {
        let gzipped = monorepo(|_| {});
        for dir in ["services/api", "./services/api/", "services//api"] {
            let context = build_context(&gzipped, dir, &SourceLimits::default()).expect("context");
            let members = members(&context);
            let summary: Vec<(EntryType, &str, Option<&str>)> = members
                .iter()
                .map(|(kind, path, link, _)| (*kind, path.as_str(), link.as_deref()))
                .collect();
            assert_eq!(
                summary,
                vec![
                    (EntryType::Regular, "Dockerfile", None),
                    (EntryType::Directory, "src", None),
                    (EntryType::Regular, "src/main.py", None),
                    (EntryType::Symlink, "static", Some("src")),
                    (EntryType::Link, "src/copy.py", Some("src/main.py")),
                ]
            );
            assert_eq!(members[0].3, b"FROM python:3.12\n");
            assert_eq!(members[2].3, b"print('api')\n");
        }
    }

    #[test]
    fn the_root_context_keeps_everything_without_dot_slash() {
        let gzipped = app(|tar| symlink(tar, "./static", "./app"));
        for dir in ["", ".", "./"] {
            let context = build_context(&gzipped, dir, &SourceLimits::default()).expect("context");
            assert_eq!(
                names(&context),
                vec!["Dockerfile", "app", "app/main.py", "static"]
            );
        }
    }

    #[test]
    fn the_context_is_repacked_with_neutral_owners() {
        let mut tar = Builder::new(Vec::new());
        let mut header = Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o4755);
        header.set_uid(1234);
        header.set_gid(99);
        header.set_username("mallory").expect("name");
        header.set_mtime(1_700_000_000);
        tar.append_data(&mut header, "Dockerfile", &b"abc"[..])
            .expect("append");
        let gzipped = gzip(&tar.into_inner().expect("finish"));
        let context = build_context(&gzipped, "", &SourceLimits::default()).expect("context");
        let mut archive = Archive::new(context.as_slice());
        let mut entries = archive.entries().expect("entries");
        let entry = entries.next().expect("one").expect("entry");
        let header = entry.header();
        assert_eq!(header.mode().expect("mode"), 0o755);
        assert_eq!(
            (header.uid().expect("uid"), header.gid().expect("gid")),
            (0, 0)
        );
        assert_eq!(header.username().expect("utf-8"), Some(""));
        assert_eq!(header.mtime().expect("mtime"), 1_700_000_000);
    }

    #[test]
    fn a_subdirectory_needs_its_own_dockerfile() {
        let gzipped = monorepo(|_| {});
        let error =
            build_context(&gzipped, "shared", &SourceLimits::default()).expect_err("no Dockerfile");
        assert_eq!(error.code(), "missing_dockerfile");
        assert_eq!(
            error.to_string(),
            "no `Dockerfile` at the root of build directory `shared`"
        );
        let error = build_context(&gzipped, "services/nope", &SourceLimits::default())
            .expect_err("no such dir");
        assert_eq!(error.code(), "missing_dockerfile");
        // A root Dockerfile is not needed when building a subdirectory.
        build_context(&gzipped, "services/web", &SourceLimits::default()).expect("web");
    }

    #[test]
    fn an_unsafe_build_directory_is_refused() {
        let gzipped = monorepo(|_| {});
        for dir in ["../services/api", "/services/api", "services/../..", "a\\b"] {
            let error = build_context(&gzipped, dir, &SourceLimits::default()).expect_err(dir);
            assert_eq!(error.code(), "unsafe_tarball_path", "{dir}: {error}");
        }
    }

    #[test]
    fn links_leaving_the_build_directory_are_refused() {
        let gzipped = monorepo(|tar| symlink(tar, "./services/api/shared", "../../shared"));
        check(&gzipped, &SourceLimits::default()).expect_err("no root Dockerfile");
        let error = build_context(&gzipped, "services/api", &SourceLimits::default())
            .expect_err("outside the build directory");
        assert_eq!(error.code(), "unsafe_tarball_link");
        assert_eq!(
            error.to_string(),
            "link `services/api/shared` -> `../../shared` leaves the build directory"
        );
        // The same link is fine when building from the root.
        let gzipped = monorepo(|tar| {
            file(tar, "Dockerfile", b"FROM scratch");
            symlink(tar, "./services/api/shared", "../../shared");
        });
        build_context(&gzipped, ".", &SourceLimits::default()).expect("root");

        let gzipped = monorepo(|tar| hardlink(tar, "./services/api/util.py", "./shared/util.py"));
        let error = build_context(&gzipped, "services/api", &SourceLimits::default())
            .expect_err("hard link outside the build directory");
        assert_eq!(error.code(), "unsafe_tarball_link");
    }

    #[test]
    fn build_context_runs_the_whole_archive_checks() {
        // Hostile members outside the build directory still refuse the upload.
        let gzipped = monorepo(|tar| raw(tar, EntryType::Fifo, b"shared/pipe", b"", b""));
        let error =
            build_context(&gzipped, "services/api", &SourceLimits::default()).expect_err("fifo");
        assert_eq!(error.code(), "unsafe_tarball_entry");
        let gzipped = monorepo(|tar| symlink(tar, "shared/etc", "/etc"));
        let error =
            build_context(&gzipped, "services/api", &SourceLimits::default()).expect_err("link");
        assert_eq!(error.code(), "unsafe_tarball_link");
    }

    #[test]
    fn every_error_has_a_code_and_an_action() {
        let errors = [
            SourceError::TooLarge,
            SourceError::Unreadable { reason: "x".into() },
            SourceError::UnsafePath {
                path: "x".into(),
                reason: "is an absolute path",
            },
            SourceError::LinkOutside {
                path: "x".into(),
                target: "y".into(),
                reason: "leaves the archive root",
            },
            SourceError::SpecialFile {
                path: "x".into(),
                kind: "block device",
            },
            SourceError::UnpackedTooLarge { limit: 1 },
            SourceError::TooManyEntries { limit: 1 },
            SourceError::MissingDockerfile { dir: String::new() },
        ];
        let mut codes = HashSet::new();
        for error in errors {
            assert!(codes.insert(error.code()), "{} twice", error.code());
            assert!(
                error.agent_action().ends_with('.'),
                "{}",
                error.agent_action()
            );
            assert!(!error.to_string().is_empty());
        }
        assert_eq!(
            SourceError::UnpackedTooLarge { limit: 100 * MIB }.to_string(),
            "the archive unpacks to more than 104857600 bytes (100 MiB)"
        );
    }
}
