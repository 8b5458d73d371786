//! Pack archives and signatures through the real binary: `vigilo pack build/keygen/sign/verify`,
//! the minisign tool on the other side, and an agent that accepts only signed packs.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{minisign, root, stderr, stdout, tar, vigilo, workday};

fn acme() -> String {
    root()
        .join("examples/packs/acme-dlp")
        .to_str()
        .expect("p")
        .to_string()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Builds acme-dlp into `dir/NAME`.
fn build(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let built = vigilo(dir, &["pack", "build", &acme(), "-o", s(&out)]);
    assert_eq!(built.status.code(), Some(0), "{}", stderr(&built));
    out
}

/// `vigilo pack keygen -o dir/BASE`: (public, secret).
fn keygen(dir: &Path, base: &str) -> (PathBuf, PathBuf) {
    let out = vigilo(dir, &["pack", "keygen", "-o", s(&dir.join(base))]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (
        dir.join(format!("{base}.pub")),
        dir.join(format!("{base}.key")),
    )
}

fn sign(dir: &Path, archive: &Path, key: &Path) {
    let out = vigilo(dir, &["pack", "sign", s(archive), "--key", s(key)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn an_archive_is_reproducible_holds_exactly_the_pack_and_loads_like_the_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = build(dir.path(), "a.tar.gz");
    let b = build(dir.path(), "b.tar.gz");
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "same files, same bytes: a rebuilt archive keeps its signature"
    );
    let listing = Command::new("tar")
        .args(["tzf", s(&a)])
        .output()
        .expect("tar runs");
    assert_eq!(stdout(&listing), "alarms/usb.toml\npack.toml\n");

    let check = vigilo(dir.path(), &["check", s(&a)]);
    assert_eq!(check.status.code(), Some(0), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("pack acme-dlp 1.4.0 by ACME IT Security — 4 alarms, ok"),
        "{}",
        stdout(&check)
    );
    assert!(stdout(&check).contains("  unsigned; grants: actions screenshot, popup, email"));

    let counts = |pack: &str| {
        let out = vigilo(
            dir.path(),
            &["replay", "--counts", "-", "--pack", pack, s(&workday())],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    assert_eq!(counts(s(&a)), counts(&acme()));

    // A broken pack is not built.
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(
        broken.join("pack.toml"),
        "[pack]\nname = \"b\"\nversion = \"1\"\n",
    )
    .expect("write");
    let out = vigilo(dir.path(), &["pack", "build", s(&broken)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("version must be semantic"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn signatures_round_trip_with_the_minisign_tool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = build(dir.path(), "acme.tar.gz");
    let (public, secret) = keygen(dir.path(), "ours");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret)
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the secret key is the owner's alone");
    }
    sign(dir.path(), &archive, &secret);
    let out = vigilo(
        dir.path(),
        &["pack", "verify", s(&archive), "-p", s(&public)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("acme-dlp 1.4.0 — signed by trusted key"));
    assert!(stdout(&out).contains("trusted comment: file:acme.tar.gz"));

    // The minisign tool checks vigilo's signature with vigilo's public key...
    minisign(&["-Vm", s(&archive), "-p", s(&public)], "");

    // ...and vigilo checks a signature made by minisign, with a key made by minisign.
    let theirs = dir.path().join("theirs.tar.gz");
    std::fs::copy(&archive, &theirs).expect("copy");
    let (m_pub, m_key) = (dir.path().join("m.pub"), dir.path().join("m.key"));
    minisign(&["-G", "-p", s(&m_pub), "-s", s(&m_key)], "pw\npw\n");
    minisign(
        &["-Sm", s(&theirs), "-s", s(&m_key), "-t", "release 1.4.0"],
        "pw\n",
    );
    let out = vigilo(dir.path(), &["pack", "verify", s(&theirs), "-p", s(&m_pub)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("trusted comment: release 1.4.0"));

    // A password-protected minisign key signs through vigilo too.
    let again = dir.path().join("again.tar.gz");
    std::fs::copy(&archive, &again).expect("copy");
    let out = Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args([
            "pack",
            "sign",
            s(&again),
            "--key",
            s(&dir.path().join("m.key")),
        ])
        .env("VIGILO_KEY_PASSWORD", "pw")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = vigilo(dir.path(), &["pack", "verify", s(&again), "-p", s(&m_pub)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // The wrong key, or a changed archive, does not verify.
    let out = vigilo(
        dir.path(),
        &["pack", "verify", s(&theirs), "-p", s(&public)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("which is not one of this agent's trusted keys"));
    let mut bytes = std::fs::read(&archive).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&archive, bytes).expect("write");
    let out = vigilo(
        dir.path(),
        &["pack", "verify", s(&archive), "-p", s(&public)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not verify"), "{}", stderr(&out));
}

#[test]
fn an_agent_with_trusted_keys_loads_only_packs_signed_by_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (public, secret) = keygen(dir.path(), "admin");
    let (_, other) = keygen(dir.path(), "stranger");
    let trusted = dir.path().join("trusted-keys");
    std::fs::create_dir_all(&trusted).expect("mkdir");
    std::fs::copy(&public, trusted.join("admin.pub")).expect("trust");

    let replay = |pack: &str| {
        vigilo(
            dir.path(),
            &["replay", "--counts", "-", "--pack", pack, s(&workday())],
        )
    };
    let unsigned = build(dir.path(), "unsigned.tar.gz");
    let out = replay(s(&unsigned));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the pack is not signed, and this agent accepts only packs signed"),
        "{}",
        stderr(&out)
    );
    let out = replay(&acme());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("a folder cannot be signed"),
        "{}",
        stderr(&out)
    );

    let foreign = build(dir.path(), "foreign.tar.gz");
    sign(dir.path(), &foreign, &other);
    let out = replay(s(&foreign));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("not one of this agent's trusted keys"));

    let good = build(dir.path(), "good.tar.gz");
    sign(dir.path(), &good, &secret);
    let out = replay(s(&good));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Large file written to USB storage\t"),
        "{}",
        stdout(&out)
    );
    let check = vigilo(dir.path(), &["check", s(&good)]);
    assert!(
        stdout(&check).contains("signed by trusted key"),
        "{}",
        stdout(&check)
    );
    assert!(stdout(&check).contains("(admin.pub)"));

    // The built-in standard pack needs no signature.
    let out = vigilo(dir.path(), &["replay", "--counts", "-", s(&workday())]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A damaged key file is an error, not a silently open door.
    std::fs::write(trusted.join("typo.pub"), "not a key").expect("write");
    let out = replay(s(&good));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("typo.pub: not a minisign public key"));
}

#[test]
fn a_hostile_archive_is_refused_before_anything_is_read_from_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // tar itself writes `../escape` when asked to (with -P); vigilo must refuse the entry.
    let work = dir.path().join("w");
    std::fs::create_dir_all(work.join("pack")).expect("mkdir");
    std::fs::write(
        work.join("pack/pack.toml"),
        "[pack]\nname = \"x\"\nversion = \"1.0.0\"\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("escape"), "x").expect("write");
    let archive = dir.path().join("evil.tar.gz");
    tar(&[
        "-czPf",
        s(&archive),
        "-C",
        s(&work),
        "pack/pack.toml",
        "../escape",
    ]);
    let out = vigilo(dir.path(), &["check", s(&archive)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"../escape\": '..' is refused"),
        "{}",
        stderr(&out)
    );

    let link_dir = dir.path().join("l");
    std::fs::create_dir_all(&link_dir).expect("mkdir");
    std::fs::write(
        link_dir.join("pack.toml"),
        "[pack]\nname = \"x\"\nversion = \"1.0.0\"\n",
    )
    .expect("write");
    std::os::unix::fs::symlink("/etc/passwd", link_dir.join("alarms.toml")).expect("link");
    let archive = dir.path().join("link.tar.gz");
    tar(&[
        "-czf",
        s(&archive),
        "-C",
        s(&link_dir),
        "pack.toml",
        "alarms.toml",
    ]);
    let out = vigilo(dir.path(), &["check", s(&archive)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"alarms.toml\": links are refused"),
        "{}",
        stderr(&out)
    );
}
