//! Back-tests as users run them: `vigilo replay --counts` on one thread and on every core, on
//! plain, gzip and zstd recordings, from files and from standard input.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{stderr, stdout, vigilo, workday};

/// `vigilo replay ARGS --counts - FILE`: the counts as printed, which must have succeeded.
fn counts(data: &Path, args: &[&str], file: &Path) -> String {
    let mut all = vec!["replay", "--counts", "-"];
    all.extend_from_slice(args);
    all.push(file.to_str().expect("path"));
    let out = vigilo(data, &all);
    assert_eq!(out.status.code(), Some(0), "{all:?}: {}", stderr(&out));
    stdout(&out)
}

/// A generated day and the 200 generated alarms of the benchmark, in `dir`.
fn generated(dir: &Path, events: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let day = dir.join("generated.jsonl");
    let out = vigilo(dir, &["synth", "events", "--count", &events.to_string()]);
    std::fs::write(&day, &out.stdout).expect("write day");
    let pack = dir.join("generated-pack");
    std::fs::create_dir_all(&pack).expect("mkdir");
    let out = vigilo(dir, &["synth", "pack"]);
    std::fs::write(pack.join("pack.toml"), &out.stdout).expect("write pack");
    (day, pack)
}

fn gzip(from: &Path, to: &Path) {
    let mut e = flate2::write::GzEncoder::new(
        std::fs::File::create(to).expect("create"),
        flate2::Compression::fast(),
    );
    e.write_all(&std::fs::read(from).expect("read"))
        .expect("gzip");
    e.finish().expect("gzip");
}

fn zstd(from: &Path, to: &Path) {
    let bytes = zstd::encode_all(&std::fs::read(from).expect("read")[..], 3).expect("zstd");
    std::fs::write(to, bytes).expect("write");
}

#[test]
fn every_core_counts_what_one_thread_counts_in_both_modes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (day, pack) = generated(dir.path(), 150_000);
    let pack = pack.to_str().expect("path");
    for (file, packs, mode) in [
        (workday(), vec![], "--every-match"),
        (workday(), vec![], "spans"),
        (day.clone(), vec!["--pack", pack], "--every-match"),
        (day.clone(), vec!["--pack", pack], "spans"),
        (day, vec![], "--every-match"),
    ] {
        // Without --every-match: spans mode, people sharded over the threads.
        let mut args = if mode == "--every-match" {
            vec![mode]
        } else {
            vec![]
        };
        args.extend(&packs);
        let one = counts(
            dir.path(),
            &[&args[..], &["--threads", "1"]].concat(),
            &file,
        );
        let two = counts(
            dir.path(),
            &[&args[..], &["--threads", "2"]].concat(),
            &file,
        );
        let every = counts(dir.path(), &args, &file);
        assert_eq!(one, two, "{}", file.display());
        assert_eq!(one, every, "{}", file.display());
        assert!(one.contains("# fired\t"), "{one}");
        let fired: u64 = one
            .lines()
            .find_map(|l| l.strip_prefix("# fired\t"))
            .and_then(|n| n.parse().ok())
            .expect("fired");
        assert!(fired > 10, "the rules fire: {one}");
    }
}

#[test]
fn counting_without_records_counts_what_the_listed_records_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = workday();
    for mode in [&[][..], &["--every-match"][..]] {
        let counted = counts(dir.path(), mode, &day);
        let mut args = vec!["replay", "--json"];
        args.extend_from_slice(mode);
        args.push(day.to_str().expect("path"));
        let listed = vigilo(dir.path(), &args);
        let mut by_name = std::collections::BTreeMap::<String, u64>::new();
        for line in stdout(&listed).lines() {
            let a: serde_json::Value = serde_json::from_str(line).expect("json");
            *by_name
                .entry(a["alarm"].as_str().expect("alarm").to_string())
                .or_default() += 1;
        }
        for line in counted.lines().filter(|l| !l.starts_with('#')) {
            let (name, n) = line.split_once('\t').expect("NAME\tCOUNT");
            let n: u64 = n.parse().expect("count");
            assert_eq!(
                by_name.get(name).copied().unwrap_or(0),
                n,
                "{mode:?} {name}"
            );
        }
        assert!(!by_name.is_empty());
    }
}

#[test]
fn compressed_recordings_count_as_the_plain_one_from_files_and_standard_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (day, pack) = generated(dir.path(), 60_000);
    let (gz, zst) = (
        dir.path().join("day.jsonl.gz"),
        dir.path().join("day.jsonl.zst"),
    );
    gzip(&day, &gz);
    zstd(&day, &zst);
    let args = ["--every-match", "--pack", pack.to_str().expect("path")];
    let plain = counts(dir.path(), &args, &day);
    assert_eq!(counts(dir.path(), &args, &gz), plain, "gzip");
    assert_eq!(counts(dir.path(), &args, &zst), plain, "zstd");
    // Spans mode reads them in order on one thread: the same there.
    assert_eq!(counts(dir.path(), &[], &zst), counts(dir.path(), &[], &day));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigilo"))
        .args(["replay", "--counts", "-", "--every-match", "--pack"])
        .args([pack.to_str().expect("path"), "-"])
        .env("VIGILO_DATA_DIR", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("vigilo runs");
    let bytes = std::fs::read(&zst).expect("read");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeder = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().expect("vigilo ends");
    feeder.join().expect("feeder").expect("fed");
    assert_eq!(
        stdout(&out),
        plain,
        "zstd on standard input: {}",
        stderr(&out)
    );
}

#[test]
fn malformed_lines_in_compressed_input_are_reported_with_their_line_numbers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("day.jsonl");
    let mut text = String::new();
    for i in 0..5000 {
        match i {
            1 => text.push_str("not json at all\n"),
            4321 => text.push_str("{\"ts\":\"nine o'clock\",\"kind\":\"usb\"}\n"),
            _ => text.push_str(&format!(
                "{{\"ts\":\"2026-11-02T09:00:00Z\",\"kind\":\"usb\",\"username\":\"u{i}\",\"action\":\"inserted\",\"device_class\":\"mass_storage\"}}\n"
            )),
        }
    }
    std::fs::write(&plain, text).expect("write");
    let gz = dir.path().join("day.jsonl.gz");
    gzip(&plain, &gz);
    let path = gz.to_str().expect("path");
    for args in [
        vec!["replay", "--json", path],
        vec![
            "replay",
            "--every-match",
            "--counts",
            "-",
            "--threads",
            "2",
            path,
        ],
    ] {
        let out = vigilo(dir.path(), &args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("{path}:2: ")), "{args:?}: {err}");
        assert!(
            err.contains(&format!("{path}:4322: ")) && err.contains("field `ts`"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("4998 events, 2 malformed lines skipped"),
            "{err}"
        );
    }
    // A stream that is not what its magic bytes say is an error, not a short day.
    let broken = dir.path().join("broken.gz");
    let mut bytes = std::fs::read(&gz).expect("read");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&broken, bytes).expect("write");
    let out = vigilo(
        dir.path(),
        &["replay", "--counts", "-", broken.to_str().expect("path")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}
