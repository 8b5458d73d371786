//! `vigilo browser-host`: the native messaging host the browser starts for the extension.
//!
//! Native messaging frames each message as a 32-bit length in the machine's byte order, then
//! that many bytes of UTF-8 JSON, on the host's stdin. The host checks each message, and
//! relays it as one JSON line to the agent's socket, connecting (again) when needed: the agent
//! may start after the browser, or restart. Reports made while no agent listens are dropped —
//! the extension reports again on the next tab change, and a stale page must not be replayed
//! into a later window. stdout is the browser's channel and is never written to; diagnostics
//! go to stderr, which the browser keeps in its own log.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::{MAX_MESSAGE, TabMessage};

/// Reads one native message. `Ok(None)` at a clean end of input (the browser closed the port).
/// A message over [`MAX_MESSAGE`] is skipped and reported as an error of kind `InvalidData`;
/// the stream stays usable.
pub fn read_message(input: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; 4];
    match input.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_ne_bytes(header) as usize;
    if len > MAX_MESSAGE {
        io::copy(&mut input.take(len as u64), &mut io::sink())?;
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("a message of {len} bytes (at most {MAX_MESSAGE}) was skipped"),
        ));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Writes one native message (length, then the bytes), as a browser does.
#[cfg(test)]
fn write_message(output: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too long"))?;
    output.write_all(&len.to_ne_bytes())?;
    output.write_all(body)?;
    output.flush()
}

/// The relay: messages from `input` to the agent's socket at `socket`, until the browser closes
/// the port. Returns how many reports were relayed.
pub fn relay(input: &mut impl Read, socket: &Path, errors: &mut impl Write) -> io::Result<u64> {
    let mut agent: Option<UnixStream> = None;
    let mut relayed = 0;
    loop {
        let body = match read_message(input) {
            Ok(Some(body)) => body,
            Ok(None) => return Ok(relayed),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let _ = writeln!(errors, "vigilo browser-host: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let message: TabMessage = match serde_json::from_slice(&body) {
            Ok(m) => m,
            Err(e) => {
                let _ = writeln!(
                    errors,
                    "vigilo browser-host: a message that is not {{\"url\", \"title\"}}: {e}"
                );
                continue;
            }
        };
        let mut line = serde_json::to_vec(&message).map_err(io::Error::other)?;
        line.push(b'\n');
        // One reconnect per message: a restarted agent is found again, a stopped one costs
        // one failed connect per report.
        for attempt in 0..2 {
            if agent.is_none() {
                match UnixStream::connect(socket) {
                    Ok(s) => agent = Some(s),
                    Err(e) => {
                        if attempt == 0 {
                            let _ = writeln!(
                                errors,
                                "vigilo browser-host: no agent at {}: {e}",
                                socket.display()
                            );
                        }
                        break;
                    }
                }
            }
            if let Some(stream) = agent.as_mut() {
                if stream.write_all(&line).is_ok() {
                    relayed += 1;
                    break;
                }
                agent = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixListener;

    fn framed(messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            write_message(&mut out, m).expect("write");
        }
        out
    }

    #[test]
    fn messages_round_trip_and_oversized_ones_are_skipped() {
        let big = vec![b'x'; MAX_MESSAGE + 1];
        let bytes = framed(&[b"{\"a\":1}", &big, b"[]"]);
        let mut input = bytes.as_slice();
        assert_eq!(
            read_message(&mut input).expect("1").as_deref(),
            Some(&b"{\"a\":1}"[..])
        );
        let skipped = read_message(&mut input).expect_err("too big");
        assert_eq!(skipped.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            read_message(&mut input).expect("3").as_deref(),
            Some(&b"[]"[..])
        );
        assert_eq!(read_message(&mut input).expect("end"), None);
        // A cut-off message is an error, not a clean end.
        let mut cut: &[u8] = &[10, 0, 0, 0, b'{'];
        assert!(read_message(&mut cut).is_err());
    }

    #[test]
    fn good_reports_reach_the_agent_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let socket = dir.path().join("browser.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let bytes = framed(&[
            br#"{"url":"https://example.com/","title":"Example"}"#,
            br#"{"title":"no url"}"#,
            br#"{"url":"https://example.org/"}"#,
        ]);
        let mut errors = Vec::new();
        let relayed = relay(&mut bytes.as_slice(), &socket, &mut errors).expect("relay");
        assert_eq!(relayed, 2);
        let errors = String::from_utf8(errors).expect("utf-8");
        assert!(errors.contains("not {\"url\", \"title\"}"), "{errors}");
        let (stream, _) = listener.accept().expect("accept");
        let lines: Vec<TabMessage> = BufReader::new(stream)
            .lines()
            .map(|l| serde_json::from_str(&l.expect("line")).expect("json"))
            .collect();
        assert_eq!(lines[0].title, "Example");
        assert_eq!(lines[1].url, "https://example.org/");
        assert_eq!(lines[1].title, "");
    }

    #[test]
    fn with_no_agent_reports_are_dropped_and_said() {
        let dir = tempfile::tempdir().expect("tmp");
        let bytes = framed(&[br#"{"url":"https://example.com/","title":"x"}"#]);
        let mut errors = Vec::new();
        let relayed = relay(
            &mut bytes.as_slice(),
            &dir.path().join("none.sock"),
            &mut errors,
        )
        .expect("relay");
        assert_eq!(relayed, 0);
        assert!(String::from_utf8_lossy(&errors).contains("no agent at"));
    }
}
