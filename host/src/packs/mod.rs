//! Rule packs: a folder with `pack.toml` (and the alarm files it names), loaded all-or-nothing.
//!
//! Loading either yields a whole [`Pack`] or a [`PackError`] listing *every* problem found, each
//! at `file:line:column`: a pack that half-loads would leave an admin guessing which alarms run.

mod action_toml;
pub(crate) mod archive;
mod diagnostic;
mod grants;
mod manifest;
pub(crate) mod regex_budget;
pub(crate) mod signature;
mod targets;
mod unknown_keys;

pub(crate) use diagnostic::Diagnostic;
pub(crate) use grants::Grants;
pub(crate) use signature::{SignatureState, TrustedKeys};

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use crate::rules::AlarmDef;

use diagnostic::Reporter;
use manifest::{RawAlarmFile, RawManifest};

/// The name of a pack's manifest inside its folder.
pub const MANIFEST: &str = "pack.toml";

/// The standard pack's manifest, compiled into the binary so a new install works with no files.
const STANDARD_MANIFEST: &str = include_str!("../../../packs/standard/pack.toml");

/// A loaded, validated pack.
#[derive(Clone, Debug)]
pub struct Pack {
    /// Unique name (letters, digits, `.`, `_`, `-`).
    pub name: String,
    /// Semantic version.
    pub version: semver::Version,
    /// Who publishes it.
    pub publisher: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Where it was loaded from (a folder, or `embedded` for the standard pack).
    pub origin: String,
    /// Its alarms, in file order.
    pub alarms: Vec<AlarmDef>,
    /// Its WASM plugins, in file order (compiled when the pack is put to use).
    pub plugins: Vec<PluginSpec>,
    /// Its Rhai scripts, in file order (syntax-checked; compiled when the pack is put to use).
    pub scripts: Vec<ScriptSpec>,
    /// What it may ask the agent to do.
    pub grants: Grants,
    /// Whom its alarms are for (`[targets]`; everyone when it has none).
    pub targets: crate::model::targets::Targets,
    /// Whether, and by whom, it is signed.
    pub signature: SignatureState,
    /// What its `matches` regexes hold compiled, caches at their largest (see
    /// `regex_budget`): measured once when it loads, summed when a rule set is built.
    pub regex_bytes: usize,
    /// Every file it is made of, by path inside the pack: `pack.toml`, its alarm files,
    /// plugins and scripts. What `vigilo pack build` puts in an archive.
    pub files: Vec<String>,
}

/// A `[[plugin]]` of a pack: the component's bytes, its configuration and limits.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    /// The component's path inside the pack.
    pub file: String,
    /// The component.
    pub bytes: Vec<u8>,
    /// What `configure` receives.
    pub config: String,
    /// What the plugin may spend.
    pub limits: crate::rules::program::Limits,
}

/// A `[[script]]` of a pack: the script's text, its configuration and limits.
#[derive(Clone, Debug)]
pub struct ScriptSpec {
    /// The script's path inside the pack.
    pub file: String,
    /// The script.
    pub source: String,
    /// What `configure` receives (TOML text).
    pub config: String,
    /// What the script may spend.
    pub limits: crate::rules::program::Limits,
}

/// Why a pack did not load: every problem found, in file order.
#[derive(Debug)]
pub struct PackError {
    /// The problems.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PackError {}

/// Where a pack's files come from: a folder on disk, an archive, or text compiled into the
/// binary.
trait PackFiles {
    /// Reads a text file by its path inside the pack.
    fn read(&self, rel: &str) -> Result<String, String> {
        String::from_utf8(self.read_bytes(rel)?).map_err(|_| "not UTF-8 text".to_string())
    }
    /// Reads a file's bytes by its path inside the pack.
    fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, String>;
    /// How to name the file in messages.
    fn display(&self, rel: &str) -> String;
}

struct DirFiles(PathBuf);

impl PackFiles for DirFiles {
    fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, String> {
        std::fs::read(self.0.join(rel)).map_err(|e| e.to_string())
    }
    fn display(&self, rel: &str) -> String {
        self.0.join(rel).display().to_string()
    }
}

/// A pack held in memory: the embedded standard pack, or one generated for tests and benches.
struct MemoryFiles<'a> {
    files: HashMap<&'a str, &'a str>,
    shown_as: &'a str,
}

impl PackFiles for MemoryFiles<'_> {
    fn read_bytes(&self, rel: &str) -> Result<Vec<u8>, String> {
        self.files
            .get(rel)
            .map(|s| s.as_bytes().to_vec())
            .ok_or_else(|| "no such file in this pack".to_string())
    }
    fn display(&self, rel: &str) -> String {
        format!("{}/{rel}", self.shown_as)
    }
}

impl Pack {
    /// Loads a pack from a folder, the `pack.toml` inside one, or an archive (`.tar.gz`,
    /// `.zip`), accepting it signed or not.
    pub fn load(path: &Path) -> Result<Pack, PackError> {
        Pack::load_trusted(path, &TrustedKeys::none())
    }

    /// The archive to hand an agent for `path`, as an upload would: an archive's bytes with its
    /// `.minisig` text when there is one, or a folder checked and built into a `.tar.gz` in
    /// memory (unsigned). Returns (bytes, signature, a file name for it).
    pub fn upload_form(path: &Path) -> Result<(Vec<u8>, Option<String>, String), PackError> {
        let shown = path.display().to_string();
        if path.is_dir() {
            let pack = Pack::load(path)?;
            let mut bytes = Vec::new();
            archive::write_tar_gz(path, &pack.files, &mut bytes).map_err(|e| single(&shown, e))?;
            return Ok((
                bytes,
                None,
                format!("{}-{}.tar.gz", pack.name, pack.version),
            ));
        }
        let bytes = read_capped(path).map_err(|e| single(&shown, e))?;
        let signature = signature_beside(path)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "pack.tar.gz".into());
        Ok((bytes, signature, name))
    }

    /// [`Pack::load`] under a trust policy: with trusted keys, only an archive signed by one
    /// of them (`ARCHIVE.minisig` beside it) loads.
    pub fn load_trusted(path: &Path, trusted: &TrustedKeys) -> Result<Pack, PackError> {
        let shown = path.display().to_string();
        if archive::is_archive(path) {
            let bytes = read_capped(path).map_err(|e| single(&shown, e))?;
            let signature = signature_beside(path)?;
            return Pack::from_archive(&bytes, signature.as_deref(), &shown, trusted);
        }
        if !trusted.is_empty() {
            return Err(problem(
                &shown,
                "this agent accepts only signed packs, and a folder cannot be signed: build an \
                 archive with `vigilo pack build`, then sign it"
                    .into(),
            ));
        }
        let dir = if path.file_name().is_some_and(|n| n == MANIFEST) && path.is_file() {
            path.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            path.to_path_buf()
        };
        load_from(&DirFiles(dir.clone()), dir.display().to_string())
    }

    /// Loads a pack from an archive's bytes and its signature file's text, under `trusted`;
    /// `shown_as` names the archive in messages. Nothing touches the disk.
    pub fn from_archive(
        bytes: &[u8],
        signature: Option<&str>,
        shown_as: &str,
        trusted: &TrustedKeys,
    ) -> Result<Pack, PackError> {
        // The signature is checked first: an untrusted archive is not even opened.
        let state = trusted
            .check(bytes, signature)
            .map_err(|e| problem(shown_as, e))?;
        let files =
            archive::ArchiveFiles::from_bytes(bytes, shown_as).map_err(|e| problem(shown_as, e))?;
        let mut pack = load_from(&files, shown_as.to_string())?;
        pack.signature = state;
        Ok(pack)
    }

    /// The standard pack every install starts with.
    pub fn standard() -> Result<Pack, PackError> {
        let mut pack = Pack::from_manifest_text("packs/standard", STANDARD_MANIFEST, "embedded")?;
        pack.signature = SignatureState::Embedded;
        Ok(pack)
    }

    /// Loads a single-file pack from the text of its `pack.toml`; `shown_as` names its folder
    /// in messages.
    pub fn from_manifest_text(shown_as: &str, text: &str, origin: &str) -> Result<Pack, PackError> {
        let files = MemoryFiles {
            files: HashMap::from([(MANIFEST, text)]),
            shown_as,
        };
        load_from(&files, origin.to_string())
    }
}

fn load_from(files: &dyn PackFiles, origin: String) -> Result<Pack, PackError> {
    let file = files.display(MANIFEST);
    let text = files.read(MANIFEST).map_err(|e| single(&file, e))?;
    let mut r = Reporter::new(file.clone(), &text);
    let Some(manifest) = parse_toml::<RawManifest>(&text, unknown_keys::File::Manifest, &mut r)
    else {
        return Err(PackError {
            diagnostics: r.found,
        });
    };
    let header = &manifest.pack;
    let mut found = Vec::new();

    let name = header.name.get_ref().clone();
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok {
        r.error(
            header.name.span(),
            "pack name must be 1 to 64 letters, digits, '.', '_' or '-'",
        );
    }
    let version = semver::Version::parse(header.version.get_ref()).unwrap_or_else(|e| {
        r.error(
            header.version.span(),
            format!("version must be semantic, like \"1.2.0\" ({e})"),
        );
        semver::Version::new(0, 0, 0)
    });
    if let Some(min) = &header.min_agent_version {
        check_agent_version(min, &mut r);
    }

    let grants = Grants::from_raw(&manifest.grants, &mut r);
    let targets = targets::targets(&manifest.targets, &mut r);

    // Alarms from pack.toml, then from each named file; names must be unique across all.
    let mut alarms = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    // What the pack's regexes hold so far: checked as each alarm compiles, so a pack of a
    // thousand costly regexes stops at the budget instead of compiling them all first.
    let mut regex_bytes = 0;
    collect_alarms(
        &manifest.alarm,
        &grants,
        &mut r,
        &mut alarms,
        &mut seen,
        &mut regex_bytes,
    );
    let mut extra_files = Vec::new();
    for rel in &header.alarm_files {
        match safe_relative(rel.get_ref()) {
            Ok(p) => extra_files.push(p),
            Err(e) => r.error(rel.span(), e),
        }
    }
    found.append(&mut r.into_sorted());
    let mut pack_files = vec![MANIFEST.to_string()];
    pack_files.extend(extra_files.iter().cloned());
    for rel in extra_files {
        let file = files.display(&rel);
        let text = match files.read(&rel) {
            Ok(t) => t,
            Err(e) => {
                found.push(single(&file, e).diagnostics.remove(0));
                continue;
            }
        };
        let mut r = Reporter::new(file, &text);
        if let Some(raw) = parse_toml::<RawAlarmFile>(&text, unknown_keys::File::Alarms, &mut r) {
            collect_alarms(
                &raw.alarm,
                &grants,
                &mut r,
                &mut alarms,
                &mut seen,
                &mut regex_bytes,
            );
        }
        found.append(&mut r.into_sorted());
    }
    let mut plugins = Vec::new();
    let mut scripts = Vec::new();
    {
        let mut r = Reporter::new(file.clone(), &text);
        for raw in &manifest.plugin {
            let raw = raw.get_ref();
            let limits = manifest::program_limits(raw, false, &mut r);
            if let Some((rel, bytes)) = program_file(files, raw, "plugin", &mut r) {
                plugins.push(PluginSpec {
                    file: rel,
                    bytes,
                    config: raw.config.clone(),
                    limits,
                });
            }
        }
        for raw in &manifest.script {
            let raw = raw.get_ref();
            let limits = manifest::program_limits(raw, true, &mut r);
            let Some((rel, bytes)) = program_file(files, raw, "script", &mut r) else {
                continue;
            };
            let Ok(source) = String::from_utf8(bytes) else {
                r.error(raw.file.span(), format!("script {rel:?} is not UTF-8 text"));
                continue;
            };
            // Syntax errors are the script file's, at their own line and column.
            if let Err(e) = crate::rules::script::check_syntax(&source) {
                found.push(Diagnostic {
                    file: files.display(&rel),
                    line: e.line,
                    column: e.column,
                    message: e.message,
                });
                continue;
            }
            scripts.push(ScriptSpec {
                file: rel,
                source,
                config: raw.config.clone(),
                limits,
            });
        }
        found.append(&mut r.into_sorted());
    }
    if !found.is_empty() {
        return Err(PackError { diagnostics: found });
    }
    let plugins_files: Vec<String> = plugins.iter().map(|p| p.file.clone()).collect();
    let scripts_files: Vec<String> = scripts.iter().map(|s| s.file.clone()).collect();
    Ok(Pack {
        name,
        version,
        publisher: header.publisher.clone(),
        description: header.description.clone(),
        origin,
        alarms,
        plugins,
        scripts,
        grants,
        targets,
        signature: SignatureState::Unsigned,
        regex_bytes,
        files: pack_files
            .into_iter()
            .chain(plugins_files)
            .chain(scripts_files)
            .collect(),
    })
}

/// Longest signature file read: a minisign signature is a few hundred bytes.
const MAX_SIGNATURE_BYTES: u64 = 16 << 10;

/// The text of `ARCHIVE.minisig` beside `archive`, if there is one (at most
/// [`MAX_SIGNATURE_BYTES`]; anything longer is no signature).
fn signature_beside(archive: &Path) -> Result<Option<String>, PackError> {
    use std::io::Read;
    let path = signature::signature_path(archive);
    let shown = path.display().to_string();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(single(&shown, e.to_string())),
    };
    let mut text = String::new();
    file.take(MAX_SIGNATURE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| single(&shown, e.to_string()))?;
    if text.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(single(
            &shown,
            format!("over {MAX_SIGNATURE_BYTES} bytes: not a minisign signature"),
        ));
    }
    Ok(Some(text))
}

/// Reads an archive file, refusing one larger than a pack may be before reading it.
fn read_capped(path: &Path) -> Result<Vec<u8>, String> {
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len > archive::MAX_TOTAL_BYTES {
        return Err(format!(
            "{len} bytes; a pack archive may hold at most {}",
            archive::MAX_TOTAL_BYTES
        ));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// Reads the file a `[[plugin]]` or `[[script]]` names, reporting a bad path or a missing file.
fn program_file(
    files: &dyn PackFiles,
    raw: &manifest::RawProgram,
    what: &str,
    r: &mut Reporter<'_>,
) -> Option<(String, Vec<u8>)> {
    let rel = match safe_relative(raw.file.get_ref()) {
        Ok(rel) => rel,
        Err(e) => {
            r.error(
                raw.file.span(),
                e.replace("alarm file", &format!("{what} file")),
            );
            return None;
        }
    };
    match files.read_bytes(&rel) {
        Ok(bytes) => Some((rel, bytes)),
        Err(e) => {
            r.error(raw.file.span(), format!("cannot read {what} {rel:?}: {e}"));
            None
        }
    }
}

fn collect_alarms(
    raw: &[toml::Spanned<manifest::RawAlarm>],
    grants: &Grants,
    r: &mut Reporter<'_>,
    out: &mut Vec<AlarmDef>,
    seen: &mut HashMap<String, String>,
    regex_bytes: &mut usize,
) {
    for a in raw {
        if *regex_bytes > regex_budget::PACK_BUDGET {
            return;
        }
        let name = a.get_ref().name();
        let key = name.get_ref().trim().to_string();
        let (line, column) = r.locate(name.span().start);
        let here = format!("{line}:{column}");
        if let Some(first) = seen.get(&key) {
            r.error(
                name.span(),
                format!("duplicate alarm name {key:?} (first defined at {first})"),
            );
            continue;
        }
        seen.insert(key.clone(), here);
        let Some(def) = manifest::alarm(a, r) else {
            continue;
        };
        *regex_bytes += regex_budget::of_alarm(&def);
        if *regex_bytes > regex_budget::PACK_BUDGET {
            r.error(
                name.span(),
                regex_budget::over_pack_budget(&key, *regex_bytes),
            );
            return;
        }
        // An action the pack was not granted is refused now, not discovered when it fires.
        let refused: Vec<String> = def
            .all_actions()
            .filter_map(|action| grants.check(action).err())
            .collect();
        for why in &refused {
            r.error(name.span(), format!("alarm {key:?}: {why}"));
        }
        if refused.is_empty() {
            out.push(def);
        }
    }
}

fn parse_toml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: unknown_keys::File,
    r: &mut Reporter<'_>,
) -> Option<T> {
    // Every unknown key at once, before serde would stop at the first.
    let unknown = unknown_keys::find(text, file);
    if !unknown.is_empty() {
        for (span, message) in unknown {
            r.error(span, message);
        }
        return None;
    }
    match toml::from_str::<T>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let message = e.message().trim();
            let message = match did_you_mean(message) {
                Some(near) => format!("{message}; did you mean `{near}`?"),
                None => message.to_string(),
            };
            r.error(e.span().unwrap_or(0..0), message);
            None
        }
    }
}

/// For serde's "unknown field `titel`, expected one of `name`, `title`, …", the expected name
/// nearest the unknown one, when it is a near miss (a typo, not another word).
fn did_you_mean(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))?;
    let (unknown, expected) = rest.split_once('`')?;
    nearest(unknown, expected.split('`').skip(1).step_by(2))
}

/// The candidate nearest `unknown`, when it is a near miss (a typo, not another word).
fn nearest<'a>(unknown: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|name| (strsim::damerau_levenshtein(unknown, name), name))
        .filter(|(distance, name)| *distance <= 2.max(name.len() / 4) && *distance < name.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// How the problem of a pack for a newer agent begins (see [`PackError::needs_newer_agent`]).
const NEEDS_NEWER_AGENT: &str = "this pack needs vigilo";

impl PackError {
    /// Whether the pack was refused (among other things, perhaps) for needing a newer agent
    /// (`min_agent_version`): a fleet's rollout says so apart from other refusals.
    pub fn needs_newer_agent(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.message.starts_with(NEEDS_NEWER_AGENT))
    }
}

fn check_agent_version(min: &toml::Spanned<String>, r: &mut Reporter<'_>) {
    let ours = semver::Version::parse(env!("CARGO_PKG_VERSION"))
        .unwrap_or_else(|_| semver::Version::new(0, 0, 0));
    match semver::Version::parse(min.get_ref()) {
        Ok(v) if v > ours => r.error(
            min.span(),
            format!("{NEEDS_NEWER_AGENT} {v} or newer; this agent is {ours}"),
        ),
        Ok(_) => {}
        Err(e) => r.error(
            min.span(),
            format!("min_agent_version must be semantic ({e})"),
        ),
    }
}

/// A path inside the pack: relative, no `..`, no root. Packs are untrusted input.
fn safe_relative(rel: &str) -> Result<String, String> {
    let p = Path::new(rel);
    let ok = !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(rel.to_string())
    } else {
        Err(format!(
            "alarm file {rel:?} must be a relative path inside the pack (no '..', no leading '/')"
        ))
    }
}

fn single(file: &str, message: String) -> PackError {
    problem(file, format!("cannot read: {message}"))
}

/// A problem with a pack as a whole (its archive, its signature), reported at its start.
fn problem(file: &str, message: String) -> PackError {
    PackError {
        diagnostics: vec![Diagnostic {
            file: file.to_string(),
            line: 1,
            column: 1,
            message,
        }],
    }
}

#[cfg(test)]
mod tests;
