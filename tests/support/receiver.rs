//! A real HTTP receiver on loopback for end-to-end tests (webhooks, OTLP/HTTP): every request
//! kept with its headers and body, answered with a status the test sets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::agent::Agent;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// Its body.
    pub body: Vec<u8>,
}

/// An HTTP receiver answering every POST with `status` (200 unless set).
pub struct Receiver {
    got: Arc<Mutex<Vec<Delivery>>>,
    /// What it answers.
    pub status: Arc<AtomicU16>,
}

impl Receiver {
    /// Serves on `listener` until the process ends.
    pub fn start(listener: TcpListener) -> Receiver {
        let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let (g, s) = (got.clone(), status.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut reader = BufReader::new(stream);
                let mut headers = HashMap::new();
                let mut line = String::new();
                let _ = reader.read_line(&mut line); // request line
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                        break;
                    }
                    if let Some((k, v)) = line.trim_end().split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let len: usize = headers
                    .get("content-length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                if reader.read_exact(&mut body).is_err() {
                    continue;
                }
                let code = s.load(Ordering::SeqCst);
                g.lock().expect("lock").push(Delivery { headers, body });
                let _ = write!(
                    reader.into_inner(),
                    "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { got, status }
    }

    /// What it got so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().expect("lock").clone()
    }

    /// The first `n` deliveries, waiting up to a minute; `agent`'s log tells why when not.
    pub fn wait_for(&self, n: usize, agent: &Agent) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.deliveries();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} deliveries; the agent's log:\n{}",
                got.len(),
                agent.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
