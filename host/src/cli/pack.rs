//! `vigilo pack`: build, sign and verify pack archives.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::fleet::packs::Publication;
use crate::model::report::{AuditEntry, FleetPack, PackInfo, RolloutState};
use crate::packs::signature::{TrustedKeys, signature_path};
use crate::packs::{Pack, archive};
use crate::rule_set::RuleSet;

use super::client::{ApiArgs, Client};
use super::{EXIT_INVALID, EXIT_OK};

/// The environment variable holding the password of a password-protected secret key.
pub const KEY_PASSWORD_ENV: &str = "VIGILO_KEY_PASSWORD";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Check a pack folder (alarms, plugins, scripts, grants) and write it as one archive of
    /// exactly its files, byte-for-byte reproducible.
    Build {
        /// The pack's folder.
        dir: PathBuf,
        /// The archive to write [default: NAME-VERSION.tar.gz].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Make a signing key pair: BASE.pub (give it to agents, in their trusted-keys/ folder) and
    /// BASE.key (keep it secret; written owner-only). The minisign tool reads both.
    Keygen {
        /// Where to write the keys, without extension.
        #[arg(short, long, default_value = "vigilo-pack")]
        output: PathBuf,
        /// Protect the secret key with the password in $VIGILO_KEY_PASSWORD.
        #[arg(long)]
        password: bool,
    },
    /// Sign an archive with a secret key (from `pack keygen` or `minisign -G`); writes
    /// ARCHIVE.minisig. A password-protected key takes its password from $VIGILO_KEY_PASSWORD.
    Sign {
        /// The archive.
        archive: PathBuf,
        /// The secret key file.
        #[arg(short, long)]
        key: PathBuf,
        /// Signed along with the archive, shown when it is verified.
        #[arg(short = 't', long)]
        trusted_comment: Option<String>,
    },
    /// Check an archive's signature (ARCHIVE.minisig) against a public key, and the pack inside.
    Verify {
        /// The archive.
        archive: PathBuf,
        /// The public key file (.pub); repeat for several.
        #[arg(short, long = "pubkey", required = true)]
        pubkey: Vec<PathBuf>,
    },
    /// Upload an archive (with ARCHIVE.minisig when there is one) to a running agent; it
    /// replaces the pack's running version at once, or is refused with every reason. A pack
    /// folder is checked and built into an archive first (unsigned: an agent that wants
    /// signatures refuses it).
    Upload {
        /// The archive, or a pack's folder.
        archive: PathBuf,
        /// The signature file [default: ARCHIVE.minisig, if it exists].
        #[arg(long)]
        signature: Option<PathBuf>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Publish a signed archive to a fleet through its hub (--data-dir of the hub, or --url):
    /// every agent it targets verifies it with its own trusted keys and runs it. Publishing an
    /// earlier version again rolls the fleet back.
    Publish {
        /// The archive.
        archive: PathBuf,
        /// The signature file [default: ARCHIVE.minisig].
        #[arg(long)]
        signature: Option<PathBuf>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Push a signed archive to an OCI registry (`oci://REGISTRY/REPOSITORY:TAG`) as an
    /// artifact: agents whose `[[fleet.pack_source]]` names that reference take it at their
    /// next poll, after checking its signature against their own keys.
    Push {
        /// The archive.
        archive: PathBuf,
        /// Where: `oci://registry.example.com/acme/packs/dlp:1`.
        reference: String,
        /// The signature file [default: ARCHIVE.minisig].
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Speak plain HTTP to the registry (one without TLS on a trusted network).
        #[arg(long)]
        plain_http: bool,
    },
    /// Where each pack published to the fleet runs: agents on each version, who refused the
    /// published one and why, who has not said yet.
    Rollout {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List a running agent's packs: version, enabled, signature, contents, versions kept.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Switch a pack on.
    Enable {
        /// The pack's name.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Switch a pack off (it stays known, with its versions).
    Disable {
        /// The pack's name.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Run the version of a pack uploaded before the running one.
    Rollback {
        /// The pack's name.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Show the audit trail: every change to the packs, who, when.
    Audit {
        /// At most this many entries, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    match args.what {
        What::Build { dir, output } => build(&dir, output),
        What::Keygen { output, password } => keygen(&output, password),
        What::Sign {
            archive,
            key,
            trusted_comment,
        } => sign(&archive, &key, trusted_comment.as_deref()),
        What::Verify { archive, pubkey } => verify(&archive, &pubkey),
        What::Upload {
            archive,
            signature,
            api,
        } => {
            let client = Client::new(&api, data_dir)?;
            let form = match form_of(&archive, signature.as_deref(), "uploaded")? {
                Ok(form) => form,
                Err(code) => return Ok(code),
            };
            client.send_as(
                client.post("/api/v1/packs").multipart(form),
                |info: &PackInfo, _| {
                    println!(
                        "uploaded {} {} — {}; running",
                        info.name, info.version, info.signature
                    )
                },
            )
        }
        What::Publish {
            archive,
            signature,
            api,
        } => {
            let client = Client::new(&api, data_dir)?;
            let form = match form_of(&archive, signature.as_deref(), "published")? {
                Ok(form) => form,
                Err(code) => return Ok(code),
            };
            client.send_as(
                client.post("/api/v1/fleet/packs").multipart(form),
                |p: &Publication, _| {
                    println!(
                        "published {} {} to the fleet, for {}: each agent verifies it with its own \
                         keys and runs it; `vigilo pack rollout` shows where it runs",
                        p.name,
                        p.version,
                        p.targets.words()
                    )
                },
            )
        }
        What::Push {
            archive,
            reference,
            signature,
            plain_http,
        } => push(&archive, &reference, signature.as_deref(), plain_http),
        What::Rollout { json, api } => {
            let client = Client::new(&api, data_dir)?;
            client.send_as(
                client.get("/api/v1/fleet/packs"),
                |answer: &RolloutAnswer, raw| {
                    if json {
                        println!("{}", raw["packs"]);
                    } else {
                        print!("{}", rollout_table(&answer.packs));
                    }
                },
            )
        }
        What::List { json, api } => {
            let client = Client::new(&api, data_dir)?;
            client.send_as(client.get("/api/v1/packs"), |packs: &Vec<PackInfo>, raw| {
                if json {
                    println!("{raw}");
                    return;
                }
                println!(
                    "{:<20} {:<10} {:<8} {:<7} {:<8} {:<8} SIGNATURE",
                    "PACK", "VERSION", "STATE", "ALARMS", "PLUGINS", "SCRIPTS"
                );
                for p in packs {
                    println!(
                        "{:<20} {:<10} {:<8} {:<7} {:<8} {:<8} {}",
                        p.name,
                        p.version,
                        if p.enabled { "enabled" } else { "disabled" },
                        p.alarms.len(),
                        p.plugins.len(),
                        p.scripts.len(),
                        p.signature,
                    );
                }
            })
        }
        What::Enable { name, api } => change(&api, data_dir, &name, "enable"),
        What::Disable { name, api } => change(&api, data_dir, &name, "disable"),
        What::Rollback { name, api } => change(&api, data_dir, &name, "rollback"),
        What::Audit { limit, json, api } => {
            let client = Client::new(&api, data_dir)?;
            client.send_as(
                client.get(&format!("/api/v1/audit?limit={limit}")),
                |entries: &Vec<AuditEntry>, raw| {
                    if json {
                        for e in raw.as_array().into_iter().flatten() {
                            println!("{e}");
                        }
                        return;
                    }
                    for e in entries {
                        println!(
                            "{}  {:<18} {:<24} {}{}",
                            e.at,
                            e.action,
                            e.object,
                            e.actor,
                            e.detail
                                .as_deref()
                                .map(|d| format!(" — {d}"))
                                .unwrap_or_default()
                        );
                    }
                },
            )
        }
    }
}

/// `vigilo pack push`: only a signed archive that loads goes up (agents refuse anything
/// else, better to hear it now than from each of them).
fn push(archive: &Path, reference: &str, signature: Option<&Path>, plain_http: bool) -> Result<u8> {
    if archive.is_dir() {
        eprintln!(
            "{}: a folder; build an archive with `vigilo pack build` and sign it first",
            archive.display()
        );
        return Ok(EXIT_INVALID);
    }
    let (bytes, beside, _) = match Pack::upload_form(archive) {
        Ok(form) => form,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("error: the pack was not pushed");
            return Ok(EXIT_INVALID);
        }
    };
    let signature = match signature {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        None => beside,
    };
    let Some(signature) = signature else {
        eprintln!(
            "{}: no signature ({}); agents refuse unsigned packs — sign it with `vigilo pack sign`",
            archive.display(),
            signature_path(archive).display()
        );
        return Ok(EXIT_INVALID);
    };
    let shown = archive.display().to_string();
    let pack = match Pack::from_archive(&bytes, None, &shown, &TrustedKeys::none()) {
        Ok(pack) => pack,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("error: the pack was not pushed");
            return Ok(EXIT_INVALID);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let pushed = runtime.block_on(crate::fleet::sources::oci::push(
        reference,
        plain_http,
        bytes,
        signature,
        (&pack.name, &pack.version.to_string()),
    ));
    match pushed {
        Ok(at) => {
            println!(
                "pushed {} {} to {reference} ({at}): agents with this [[fleet.pack_source]] take                  it at their next poll",
                pack.name, pack.version
            );
            Ok(EXIT_OK)
        }
        Err(crate::fleet::sources::oci::PushError::Reference(e)) => {
            eprintln!("{e}");
            Ok(EXIT_INVALID)
        }
        Err(e) => Err(anyhow::Error::new(e).context("the pack was not pushed")),
    }
}

/// The multipart form of an archive (or a pack folder, built first) and its signature; the
/// exit code when it is not a pack. `done` says what is not done when it fails.
fn form_of(
    archive: &Path,
    signature: Option<&Path>,
    done: &str,
) -> Result<Result<reqwest::blocking::multipart::Form, u8>> {
    let (bytes, mut sig, file_name) = match Pack::upload_form(archive) {
        Ok(form) => form,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("error: the pack was not {done}");
            return Ok(Err(EXIT_INVALID));
        }
    };
    if archive.is_dir() {
        eprintln!("built {file_name} from {} (unsigned)", archive.display());
    } else if let Some(path) = signature {
        sig = Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
    }
    let mut form = reqwest::blocking::multipart::Form::new().part(
        "archive",
        reqwest::blocking::multipart::Part::bytes(bytes).file_name(file_name),
    );
    if let Some(sig) = sig {
        form = form.text("signature", sig);
    }
    Ok(Ok(form))
}

/// `GET /api/v1/fleet/packs`.
#[derive(serde::Deserialize)]
struct RolloutAnswer {
    packs: Vec<FleetPack>,
}

/// The rollout as `vigilo pack rollout` prints it: a line per pack, then a line per refusal.
fn rollout_table(packs: &[FleetPack]) -> String {
    let mut out = format!(
        "{:<20} {:<10} {:<28} {:<8} {:<8} {:<8} FOR\n",
        "PACK", "PUBLISHED", "RUNNING", "REFUSED", "WAITING", "BY"
    );
    for p in packs {
        let running: Vec<String> = p
            .running
            .iter()
            .rev()
            .map(|(v, n)| format!("{n} on {v}"))
            .collect();
        let refused: usize = p
            .refused
            .iter()
            .filter(|r| r.state != RolloutState::NotTargeted)
            .map(|r| r.agents.len())
            .sum();
        out.push_str(&format!(
            "{:<20} {:<10} {:<28} {:<8} {:<8} {:<8} {}\n",
            p.name,
            p.version,
            if running.is_empty() {
                "none".to_string()
            } else {
                running.join(", ")
            },
            refused,
            p.waiting,
            p.published_by,
            p.targets
        ));
        for r in &p.refused {
            out.push_str(&format!(
                "  {}: {} — {}\n",
                r.state.words(),
                r.agents.join(", "),
                r.errors.first().map(String::as_str).unwrap_or("")
            ));
        }
    }
    out
}

/// `POST /api/v1/packs/NAME/ACTION`.
fn change(api: &ApiArgs, data_dir: &Path, name: &str, action: &str) -> Result<u8> {
    let client = Client::new(api, data_dir)?;
    let path = format!("/api/v1/packs/{name}/{action}");
    client.send_as(client.post(&path), |info: &PackInfo, _| {
        println!(
            "{} {} — {}",
            info.name,
            info.version,
            if info.enabled { "enabled" } else { "disabled" }
        )
    })
}

fn build(dir: &Path, output: Option<PathBuf>) -> Result<u8> {
    let pack = match Pack::load(dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("error: the pack was not built");
            return Ok(EXIT_INVALID);
        }
    };
    // Plugins and scripts must load too: an archive that cannot run is not worth signing.
    let (name, version, files) = (pack.name.clone(), pack.version.clone(), pack.files.clone());
    if let Err(e) = RuleSet::new(vec![pack]) {
        eprintln!("error: {e}");
        eprintln!("error: the pack was not built");
        return Ok(EXIT_INVALID);
    }
    let output = output.unwrap_or_else(|| PathBuf::from(format!("{name}-{version}.tar.gz")));
    let tmp = output.with_extension("partial");
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    archive::write_tar_gz(dir, &files, std::io::BufWriter::new(file))
        .map_err(anyhow::Error::msg)?;
    std::fs::rename(&tmp, &output).with_context(|| format!("cannot write {}", output.display()))?;
    let len = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "built {} ({} files, {len} bytes): sign it with `vigilo pack sign {} --key KEY`",
        output.display(),
        files.len(),
        output.display()
    );
    Ok(EXIT_OK)
}

fn keygen(base: &Path, password: bool) -> Result<u8> {
    let pair = if password {
        let pw = std::env::var(KEY_PASSWORD_ENV)
            .with_context(|| format!("--password needs the password in ${KEY_PASSWORD_ENV}"))?;
        minisign::KeyPair::generate_encrypted_keypair(Some(pw))?
    } else {
        minisign::KeyPair::generate_unencrypted_keypair()?
    };
    let (pub_path, key_path) = (base.with_extension("pub"), base.with_extension("key"));
    for p in [&pub_path, &key_path] {
        anyhow::ensure!(!p.exists(), "{} exists; not overwriting a key", p.display());
    }
    let pk = pair.pk.to_box()?.into_string();
    let sk = pair.sk.to_box(None)?.into_string();
    write_owner_only(&key_path, sk.as_bytes())?;
    std::fs::write(&pub_path, pk.as_bytes())
        .with_context(|| format!("cannot write {}", pub_path.display()))?;
    eprintln!(
        "wrote {} (public: copy it to each agent's trusted-keys/ folder) and {} (secret)",
        pub_path.display(),
        key_path.display()
    );
    Ok(EXIT_OK)
}

fn sign(archive: &Path, key: &Path, trusted_comment: Option<&str>) -> Result<u8> {
    let text =
        std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    let boxed = minisign::SecretKeyBox::from_string(&text)?;
    let sk = match std::env::var(KEY_PASSWORD_ENV) {
        Ok(pw) => boxed.into_secret_key(Some(pw)),
        Err(_) => boxed.into_unencrypted_secret_key(),
    }
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot use {} as a secret key: {e} (a password-protected key takes its password \
             from ${KEY_PASSWORD_ENV})",
            key.display()
        )
    })?;
    let bytes =
        std::fs::read(archive).with_context(|| format!("cannot read {}", archive.display()))?;
    // Only what is an acceptable pack gets signed.
    if let Err(e) = archive::ArchiveFiles::from_bytes(&bytes, &archive.display().to_string()) {
        eprintln!("error: {}: {e}", archive.display());
        return Ok(EXIT_INVALID);
    }
    let file_name = archive
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let comment = trusted_comment
        .map(str::to_string)
        .unwrap_or_else(|| format!("file:{file_name}"));
    let sig = minisign::sign(
        None,
        &sk,
        std::io::Cursor::new(&bytes),
        Some(&comment),
        Some("signature from vigilo pack sign"),
    )?;
    let out = signature_path(archive);
    std::fs::write(&out, sig.into_string())
        .with_context(|| format!("cannot write {}", out.display()))?;
    eprintln!("signed: {}", out.display());
    Ok(EXIT_OK)
}

fn verify(archive_path: &Path, pubkeys: &[PathBuf]) -> Result<u8> {
    let mut keys = TrustedKeys::none();
    for p in pubkeys {
        keys.add_file(p).map_err(anyhow::Error::msg)?;
    }
    match Pack::load_trusted(archive_path, &keys) {
        Ok(pack) => {
            println!(
                "{} {} — {}; {} files",
                pack.name,
                pack.version,
                pack.signature,
                pack.files.len()
            );
            if let crate::packs::SignatureState::Verified {
                trusted_comment, ..
            } = &pack.signature
            {
                println!("trusted comment: {trusted_comment}");
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(EXIT_INVALID)
        }
    }
}

/// Writes a file readable by its owner only (a secret key), refusing to follow a planted link.
fn write_owner_only(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::owner_only::create(path, bytes)
        .with_context(|| format!("cannot create {}", path.display()))
}
