//! Recorded days as they arrive: plain JSONL, gzip (`.jsonl.gz`) or zstd (`.jsonl.zst`), from a
//! file or standard input. The format is told from the first bytes, not the name, so a
//! compressed stream piped in reads as well as a file, and a misnamed file reads as what it is.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Buffer for the decompressed stream: lines are found and copied from it.
const BUFFER: usize = 256 * 1024;

/// An opened recording.
pub struct Input {
    /// The events' text, decompressed.
    pub reader: Box<dyn BufRead + Send>,
    /// The file's size on disk (none for standard input), for progress.
    pub size: Option<u64>,
    /// Bytes read from the file so far (compressed bytes, when it is compressed).
    pub read: Arc<AtomicU64>,
}

/// Opens `path` (`-`: standard input), decompressing gzip or zstd.
pub fn open(path: &Path) -> io::Result<Input> {
    let read = Arc::new(AtomicU64::new(0));
    let (raw, size): (Box<dyn Read + Send>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        let file = File::open(path)?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let mut counted = BufReader::with_capacity(
        BUFFER,
        Counting {
            inner: raw,
            read: read.clone(),
        },
    );
    let reader: Box<dyn BufRead + Send> = match counted.fill_buf()? {
        // Several gzip members one after the other (`cat a.gz b.gz`) are one stream.
        [0x1f, 0x8b, ..] => Box::new(BufReader::with_capacity(
            BUFFER,
            flate2::bufread::MultiGzDecoder::new(counted),
        )),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Box::new(BufReader::with_capacity(
            BUFFER,
            zstd::stream::read::Decoder::with_buffer(counted)?,
        )),
        _ => Box::new(counted),
    };
    Ok(Input { reader, size, read })
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn text_of(path: &Path) -> String {
        let mut input = open(path).expect("open");
        let mut text = String::new();
        input.reader.read_to_string(&mut text).expect("read");
        text
    }

    #[test]
    fn gzip_and_zstd_read_as_the_plain_text_whatever_their_names() {
        let dir = tempfile::tempdir().expect("tmp");
        let text = "{\"a\":1}\n{\"b\":2}\n".repeat(1000);
        let plain = dir.path().join("day.jsonl");
        std::fs::write(&plain, &text).expect("write");
        // Two gzip members, as `cat a.gz b.gz` makes.
        let gz = dir.path().join("day.jsonl.gz");
        let mut bytes = Vec::new();
        for half in [&text[..8000], &text[8000..]] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(half.as_bytes()).expect("gz");
            bytes.extend(e.finish().expect("gz"));
        }
        std::fs::write(&gz, &bytes).expect("write");
        let zst = dir.path().join("misnamed.jsonl");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).expect("zstd")).expect("write");
        assert_eq!(text_of(&plain), text);
        assert_eq!(text_of(&gz), text);
        assert_eq!(text_of(&zst), text);
        assert!(
            std::fs::metadata(&gz).expect("gz").len() < 2000,
            "it was compressed"
        );
    }

    #[test]
    fn a_corrupt_stream_is_an_error_not_an_end() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("bad.gz");
        std::fs::write(
            &path,
            [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff],
        )
        .expect("w");
        let mut input = open(&path).expect("open");
        let mut text = String::new();
        assert!(input.reader.read_to_string(&mut text).is_err());
        // A zstd stream cut in half, and one whose frame header asks for a 2 GiB window (past
        // the decoder's 128 MiB limit: refused rather than allocated).
        let zst = zstd::encode_all("{\"a\":1}\n".repeat(10_000).as_bytes(), 3).expect("zstd");
        let cut = dir.path().join("cut.zst");
        std::fs::write(&cut, &zst[..zst.len() / 2]).expect("w");
        let mut text = String::new();
        assert!(
            open(&cut)
                .expect("open")
                .reader
                .read_to_string(&mut text)
                .is_err()
        );
        let huge = dir.path().join("huge.zst");
        // Magic, frame header descriptor (no checksum, window descriptor present), window
        // descriptor 0xA8: exponent 21 → 2^(10+21) = 2 GiB.
        std::fs::write(&huge, [0x28, 0xb5, 0x2f, 0xfd, 0x00, 0xa8, 0, 0, 0, 0]).expect("w");
        let mut text = String::new();
        let refused = open(&huge)
            .expect("open")
            .reader
            .read_to_string(&mut text)
            .expect_err("window too large");
        assert!(refused.to_string().contains("too much memory"), "{refused}");
    }
}
