//! Pack archives: one `.tar.gz` or `.zip` of a pack's folder.
//!
//! An archive is untrusted input until its signature and contents check out, so it is never
//! extracted to disk: entries are read into memory, each one checked first. Refused: absolute
//! paths, `..`, links and special files, duplicate names, an entry over [`MAX_ENTRY_BYTES`], more
//! than [`MAX_TOTAL_BYTES`] in all (counted as decompressed, so a compression bomb stops at the
//! cap), more than [`MAX_ENTRIES`] entries. An archive of a folder (`acme/pack.toml`…) is read as
//! if the folder were its root.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Component, Path};

use super::PackFiles;

/// Largest file inside a pack.
pub const MAX_ENTRY_BYTES: u64 = 32 << 20;
/// Largest pack, all files together, decompressed.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;
/// Most files in a pack.
pub const MAX_ENTRIES: usize = 2_000;

/// Whether `path` names an archive (by its extension).
pub fn is_archive(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".zip")
}

/// A pack's files, read from an archive.
pub struct ArchiveFiles {
    files: HashMap<String, Vec<u8>>,
    shown_as: String,
}

impl ArchiveFiles {
    /// Reads and checks an archive held in memory; `shown_as` names it in messages.
    pub fn from_bytes(bytes: &[u8], shown_as: &str) -> Result<ArchiveFiles, String> {
        let mut reader = Entries::default();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            read_tar_gz(bytes, &mut reader)?;
        } else if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
            read_zip(bytes, &mut reader)?;
        } else {
            return Err("not a pack archive: expected a .tar.gz or a .zip".into());
        }
        Ok(ArchiveFiles {
            files: reader.rooted()?,
            shown_as: shown_as.to_string(),
        })
    }

    /// The files' paths inside the pack, sorted.
    #[cfg(test)]
    fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.files.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl PackFiles for ArchiveFiles {
    fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, String> {
        let rel = rel.trim_start_matches("./");
        self.files
            .get(rel)
            .cloned()
            .ok_or_else(|| "no such file in this archive".to_string())
    }

    fn display(&self, rel: &str) -> String {
        format!("{}:{rel}", self.shown_as)
    }
}

/// Entries collected so far, with the running totals the caps apply to.
#[derive(Default)]
struct Entries {
    files: HashMap<String, Vec<u8>>,
    total: u64,
}

impl Entries {
    /// Checks one entry's name and reads its content, at most up to the caps.
    fn add(&mut self, name: &str, declared: u64, content: impl Read) -> Result<(), String> {
        let rel = checked_path(name)?;
        if self.files.len() >= MAX_ENTRIES {
            return Err(format!("more than {MAX_ENTRIES} files"));
        }
        if declared > MAX_ENTRY_BYTES {
            return Err(format!(
                "{rel}: {declared} bytes; a file in a pack may hold at most {MAX_ENTRY_BYTES}"
            ));
        }
        // Declared sizes can lie: count what actually comes out.
        let mut bytes = Vec::new();
        content
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("{rel}: cannot read: {e}"))?;
        let len = bytes.len() as u64;
        if len > MAX_ENTRY_BYTES {
            return Err(format!(
                "{rel}: more than {MAX_ENTRY_BYTES} bytes once decompressed"
            ));
        }
        self.total += len;
        if self.total > MAX_TOTAL_BYTES {
            return Err(format!(
                "more than {MAX_TOTAL_BYTES} bytes in all once decompressed"
            ));
        }
        if self.files.insert(rel.clone(), bytes).is_some() {
            return Err(format!("{rel}: appears twice"));
        }
        Ok(())
    }

    /// The files, re-rooted when the archive holds one folder with the pack inside.
    fn rooted(self) -> Result<HashMap<String, Vec<u8>>, String> {
        if self.files.contains_key(super::MANIFEST) {
            return Ok(self.files);
        }
        let first = |k: &String| k.split('/').next().map(str::to_string);
        let tops: std::collections::BTreeSet<String> =
            self.files.keys().filter_map(first).collect();
        match tops.iter().next() {
            Some(top) if tops.len() == 1 => {
                let prefix = format!("{top}/");
                Ok(self
                    .files
                    .into_iter()
                    .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v)))
                    .collect())
            }
            _ => Err(format!(
                "no {} at the top of the archive (or in its one folder)",
                super::MANIFEST
            )),
        }
    }
}

/// A relative path of plain names (`./` allowed), as `a/b/c`; anything else is refused.
fn checked_path(name: &str) -> Result<String, String> {
    let path = Path::new(name);
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(
                p.to_str()
                    .ok_or_else(|| format!("{name:?}: file names in a pack must be UTF-8"))?,
            ),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("{name:?}: '..' is refused")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{name:?}: absolute paths are refused"));
            }
        }
    }
    if parts.is_empty() || name.contains('\\') {
        return Err(format!("{name:?}: not a usable file name"));
    }
    Ok(parts.join("/"))
}

/// A folder entry: like a file's path, except that the archive's own root (`./`) is fine.
fn checked_folder(name: &str) -> Result<(), String> {
    if Path::new(name).components().all(|c| c == Component::CurDir) {
        return Ok(());
    }
    checked_path(name).map(|_| ())
}

/// Largest GNU long-name or PAX record: a path inside a pack is far shorter, so anything bigger
/// is hostile (the tar crate would otherwise read a 1 GiB name into memory).
const MAX_NAME_RECORD_BYTES: u64 = 64 << 10;

/// Every byte that comes out of the decompressor — files, folder entries' data, headers,
/// padding, name records — counts against this, whatever the entry type: a folder entry
/// carrying gigabytes of zeros stops here instead of being decompressed in full to be skipped.
const MAX_DECOMPRESSED_BYTES: u64 = MAX_TOTAL_BYTES + (MAX_ENTRIES as u64 + 16) * 3 * 512;

/// A reader that fails once more than `left` bytes have passed through it.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other(format!(
                "more than {MAX_DECOMPRESSED_BYTES} bytes once decompressed"
            )));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads the tar entries raw, so that name records are bounded before they are read: the
/// tar crate's own handling reads a GNU long name or a PAX record whole, whatever its size.
fn read_tar_gz(bytes: &[u8], out: &mut Entries) -> Result<(), String> {
    let gz = Capped {
        inner: flate2::read::GzDecoder::new(bytes),
        left: MAX_DECOMPRESSED_BYTES,
    };
    let mut archive = tar::Archive::new(gz);
    let entries = archive
        .entries()
        .map_err(|e| format!("not a readable .tar.gz: {e}"))?
        .raw(true);
    // The name a GNU long-name or PAX record gave the entry that follows it.
    let mut long_name: Option<String> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a readable .tar.gz: {e}"))?;
        let kind = entry.header().entry_type();
        let size = entry.size();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            if size > MAX_NAME_RECORD_BYTES {
                return Err(format!(
                    "a {} record of {size} bytes; at most {MAX_NAME_RECORD_BYTES} are allowed",
                    if kind.is_gnu_longname() {
                        "long-name"
                    } else {
                        "PAX"
                    }
                ));
            }
            if long_name.is_some() {
                return Err("two name records describe the same entry".into());
            }
            long_name = if kind.is_gnu_longname() {
                let mut name = Vec::new();
                entry
                    .read_to_end(&mut name)
                    .map_err(|e| format!("not a readable .tar.gz: {e}"))?;
                while name.last() == Some(&0) {
                    name.pop();
                }
                Some(String::from_utf8(name).map_err(|_| {
                    "a long name that is not UTF-8; file names in a pack must be".to_string()
                })?)
            } else {
                pax_path(&mut entry)?
            };
            continue;
        }
        if kind.is_pax_global_extensions() || kind.is_gnu_longlink() {
            return Err(format!(
                "a {kind:?} record; only files and folders are allowed"
            ));
        }
        let name = match long_name.take() {
            Some(name) => name,
            None => String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
        };
        use tar::EntryType as T;
        match kind {
            T::Regular | T::Continuous => out.add(&name, size, entry)?,
            T::Directory if size > 0 => {
                return Err(format!("{name:?}: a folder entry carrying {size} bytes"));
            }
            T::Directory => checked_folder(&name)?,
            T::Symlink | T::Link => {
                return Err(format!("{name:?}: links are refused"));
            }
            other => {
                return Err(format!(
                    "{name:?}: a {other:?} entry; only files and folders are allowed"
                ));
            }
        }
    }
    if long_name.is_some() {
        return Err("a name record with no entry after it".into());
    }
    Ok(())
}

/// The `path` a PAX record gives the next entry. A record that changes its size is refused:
/// raw reading would not apply it, and two readers that disagree on where an entry ends make an
/// archive that shows one thing to a reviewer and another to the agent.
fn pax_path<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<String>, String> {
    let mut path = None;
    let records = entry
        .pax_extensions()
        .map_err(|e| format!("not a readable .tar.gz: {e}"))?;
    for record in records.into_iter().flatten() {
        let record = record.map_err(|e| format!("a malformed PAX record: {e}"))?;
        match record.key() {
            Ok("path") => {
                let value = record
                    .value()
                    .map_err(|_| "a PAX path that is not UTF-8".to_string())?;
                path = Some(value.to_string());
            }
            Ok("size") => return Err("a PAX record that sets an entry's size is refused".into()),
            _ => {}
        }
    }
    Ok(path)
}

fn read_zip(bytes: &[u8], out: &mut Entries) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a readable .zip: {e}"))?;
    // The zip crate keeps the last of two entries with one name and lists only it, while
    // `unzip -p` shows the first: an admin reviewing the archive would read another pack than
    // the one loaded. Entries whose local headers disagree with the central directory, overlap
    // (one compressed block read as many files) or hide outside it are refused the same way.
    if archive.has_duplicate_names() {
        return Err("two entries share a name; a pack archive holds each file once".into());
    }
    archive
        .validate_header_consistency()
        .map_err(|e| format!("not a consistent .zip: {e}"))?;
    for i in 0..archive.len() {
        let file = archive
            .by_index(i)
            .map_err(|e| format!("not a readable .zip (entry {i}): {e}"))?;
        let name = file
            .name()
            .map_err(|e| format!("entry {i} has an unreadable name: {e}"))?
            .to_string();
        if file.is_symlink() {
            return Err(format!("{name:?}: links are refused"));
        }
        if file.is_dir() {
            checked_folder(&name)?;
            continue;
        }
        let declared = file.size();
        out.add(&name, declared, file)?;
    }
    Ok(())
}

/// Writes the pack's `files` (paths inside the pack, read from `dir`) as a `.tar.gz` whose bytes
/// depend only on the files: sorted, with fixed times, owners and modes, so a rebuilt archive
/// verifies against the same signature.
pub fn write_tar_gz(dir: &Path, files: &[String], out: impl std::io::Write) -> Result<(), String> {
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    let mut sorted = files.to_vec();
    sorted.sort();
    sorted.dedup();
    for rel in &sorted {
        let bytes = std::fs::read(dir.join(rel)).map_err(|e| format!("cannot read {rel}: {e}"))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, rel, bytes.as_slice())
            .map_err(|e| format!("cannot add {rel}: {e}"))?;
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .map(|_| ())
        .map_err(|e| format!("cannot write the archive: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .tar.gz with raw headers, so hostile entries (links, `..`) can be made.
    fn tar_gz(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            // Written straight into the header: `append_data` would refuse `..` itself.
            let field = &mut header.as_old_mut().name;
            field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(*kind);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/passwd").expect("link");
            }
            header.set_cksum();
            builder.append(&header, *data).expect("append");
        }
        builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish")
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("start");
            std::io::Write::write_all(&mut w, data).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    const FILE: tar::EntryType = tar::EntryType::Regular;

    #[test]
    fn reads_tar_gz_and_zip_rooted_at_the_pack() {
        let tgz = tar_gz(&[
            ("acme/", tar::EntryType::Directory, b""),
            ("acme/pack.toml", FILE, b"[pack]"),
            ("acme/s/a.rhai", FILE, b"fn"),
        ]);
        let files = ArchiveFiles::from_bytes(&tgz, "a.tar.gz").expect("reads");
        assert_eq!(files.names(), ["pack.toml", "s/a.rhai"]);
        assert_eq!(files.read("./s/a.rhai").expect("read"), "fn");
        assert_eq!(files.display("s/a.rhai"), "a.tar.gz:s/a.rhai");

        let zip = zip_of(&[("pack.toml", b"[pack]"), ("x/y.wasm", b"\0asm")]);
        let files = ArchiveFiles::from_bytes(&zip, "a.zip").expect("reads");
        assert_eq!(files.names(), ["pack.toml", "x/y.wasm"]);
    }

    #[test]
    fn hostile_archives_are_refused_with_the_entry() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                tar_gz(&[("pack.toml", FILE, b""), ("../evil", FILE, b"x")]),
                "\"../evil\": '..' is refused",
            ),
            (
                tar_gz(&[("pack.toml", FILE, b""), ("/etc/cron.d/x", FILE, b"x")]),
                "\"/etc/cron.d/x\": absolute paths are refused",
            ),
            (
                tar_gz(&[
                    ("pack.toml", FILE, b""),
                    ("link", tar::EntryType::Symlink, b""),
                ]),
                "\"link\": links are refused",
            ),
            (
                tar_gz(&[
                    ("pack.toml", FILE, b""),
                    ("fifo", tar::EntryType::Fifo, b""),
                ]),
                "only files and folders are allowed",
            ),
            (
                tar_gz(&[("pack.toml", FILE, b""), ("pack.toml", FILE, b"")]),
                "pack.toml: appears twice",
            ),
            (
                tar_gz(&[("a/pack.toml", FILE, b""), ("b/x", FILE, b"")]),
                "no pack.toml at the top",
            ),
            (
                zip_of(&[("pack.toml", b""), ("../../x", b"")]),
                "'..' is refused",
            ),
            (b"hello".to_vec(), "not a pack archive"),
            (vec![0x1f, 0x8b, 0, 1, 2], "not a readable .tar.gz"),
        ];
        for (bytes, says) in cases {
            match ArchiveFiles::from_bytes(&bytes, "x") {
                Err(e) => assert!(e.contains(says), "{says}: {e}"),
                Ok(_) => panic!("accepted; expected {says}"),
            }
        }
    }

    #[test]
    fn a_zip_with_two_entries_of_one_name_is_refused() {
        // The zip writer refuses duplicates, so the second name is patched in afterwards (the
        // CRC covers the data, not the name): `unzip -p` would show the first pack.toml, the
        // zip crate keep the last.
        let mut zip = zip_of(&[
            ("pack.toml", b"[pack]\nname = \"a\""),
            ("pack.tomX", b"[grants]\nactions = [\"terminate\"]"),
        ]);
        let at: Vec<usize> = zip
            .windows(9)
            .enumerate()
            .filter(|(_, w)| *w == b"pack.tomX")
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at.len(), 2, "local header and central directory");
        for i in at {
            zip[i + 8] = b'l';
        }
        let err = ArchiveFiles::from_bytes(&zip, "x.zip")
            .err()
            .expect("refused");
        assert!(err.contains("two entries share a name"), "{err}");
    }

    /// A .tar.gz of raw 512-byte blocks: a header of `kind` declaring `size`, then `data`.
    fn raw_tar_gz(records: &[(&str, tar::EntryType, u64, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for (name, kind, size, data) in records {
            let mut header = tar::Header::new_gnu();
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(*size);
            header.set_mode(0o644);
            header.set_entry_type(*kind);
            header.set_cksum();
            gz.write_all(header.as_bytes()).expect("header");
            gz.write_all(data).expect("data");
            let pad = (512 - data.len() % 512) % 512;
            gz.write_all(&vec![0; pad]).expect("pad");
        }
        gz.write_all(&[0; 1024]).expect("end");
        gz.finish().expect("finish")
    }

    #[test]
    fn tar_entries_that_are_not_files_cannot_carry_data_past_the_caps() {
        // A folder entry carrying 100 MiB of zeros (~100 KiB compressed): refused at its
        // header, not decompressed in full to be skipped.
        let zeros = vec![0u8; 100 << 20];
        let folder = raw_tar_gz(&[
            ("pack.toml", tar::EntryType::Regular, 0, b""),
            ("d/", tar::EntryType::Directory, zeros.len() as u64, &zeros),
        ]);
        assert!(folder.len() < 1 << 20);
        let err = ArchiveFiles::from_bytes(&folder, "x")
            .err()
            .expect("refused");
        assert!(
            err.contains("a folder entry carrying 104857600 bytes"),
            "{err}"
        );
        // A GNU long name of 1 MiB is refused before it is read into memory.
        let long = vec![b'a'; 1 << 20];
        let name = raw_tar_gz(&[
            (
                "././@LongLink",
                tar::EntryType::GNULongName,
                long.len() as u64,
                &long,
            ),
            ("pack.toml", tar::EntryType::Regular, 0, b""),
        ]);
        let err = ArchiveFiles::from_bytes(&name, "x").err().expect("refused");
        assert!(err.contains("a long-name record of 1048576 bytes"), "{err}");
        // Whatever the entry, every decompressed byte counts: the reader under the tar
        // parser stops at the cap.
        let mut capped = Capped {
            inner: std::io::repeat(0),
            left: MAX_DECOMPRESSED_BYTES,
        };
        let err = std::io::copy(&mut capped, &mut std::io::sink()).expect_err("stops");
        assert!(err.to_string().contains("once decompressed"), "{err}");
    }

    #[test]
    fn long_names_within_bounds_still_name_the_file() {
        // `pack build` writes paths over 100 bytes as GNU long names; a PAX path works too.
        let deep = format!("scripts/{}/a.rhai", "d".repeat(120));
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        let mut header = tar::Header::new_gnu();
        header.set_size(6);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "pack.toml", &b"[pack]"[..])
            .expect("pack.toml");
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, &deep, &b"fn"[..])
            .expect("long name");
        builder
            .append_pax_extensions([("path", "s/pax.rhai".as_bytes())])
            .expect("pax");
        let mut header = tar::Header::new_ustar();
        header.set_path("short").expect("path");
        header.set_size(1);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, &b"x"[..]).expect("pax entry");
        let tgz = builder
            .into_inner()
            .and_then(|gz| gz.finish())
            .expect("finish");
        let files = ArchiveFiles::from_bytes(&tgz, "x").expect("reads");
        assert_eq!(files.names(), ["pack.toml", "s/pax.rhai", deep.as_str()]);
    }

    #[test]
    fn a_compression_bomb_stops_at_the_cap() {
        // 40 MiB of zeros compresses to ~40 KiB; read, it passes the per-file cap.
        let zeros = vec![0u8; 40 << 20];
        let bomb = zip_of(&[("pack.toml", b""), ("zeros", &zeros)]);
        assert!(bomb.len() < 1 << 20);
        let err = ArchiveFiles::from_bytes(&bomb, "x").err().expect("refused");
        assert!(err.contains("zeros: "), "{err}");
    }
}
