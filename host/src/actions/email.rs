//! E-mail through the site's SMTP server (lettre; TLS or STARTTLS by the URL, with the
//! system's certificate store), with the alarm's screenshots attached when asked.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Message, SmtpTransport, Transport};

use serde::Deserialize;

use super::failure::Failure;

/// The mail server: the `[email]` section of the agent's settings (`agent.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server as a URL (see the module docs); credentials URL-encoded in it.
    pub url: String,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// Attach the alarm's screenshots taken so far.
    #[serde(default = "yes")]
    pub attach_screenshots: bool,
}

fn yes() -> bool {
    true
}

/// A connection setup to the mail server.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    /// Attach screenshots.
    pub attach: bool,
}

impl Mailer {
    /// Checks the settings and prepares the transport (no connection yet).
    pub fn new(config: &EmailConfig) -> Result<Mailer, String> {
        let transport = SmtpTransport::from_url(&config.url)
            .map_err(|e| {
                format!("url: {e} (expected smtps://…, smtp://…?tls=required or smtp://…)")
            })?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        let from = config
            .from
            .parse()
            .map_err(|e| format!("from: {e} (expected `Name <address>` or an address)"))?;
        Ok(Mailer {
            transport,
            from,
            attach: config.attach_screenshots,
        })
    }

    /// Sends one message; says what the server answered, or why it was not sent and whether
    /// trying again can help (a recipient the server refuses with a 5xx is refused again).
    pub fn send(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
        attachments: &[(String, Vec<u8>)],
    ) -> Result<String, Failure> {
        let mut builder = Message::builder().from(self.from.clone()).subject(subject);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| Failure::Permanent(format!("recipient {address}: {e}")))?;
            builder = builder.to(mailbox);
        }
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string());
        let message = if attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let png =
                ContentType::parse("image/png").map_err(|e| Failure::Permanent(e.to_string()))?;
            let mut parts = MultiPart::mixed().singlepart(text);
            for (name, bytes) in attachments {
                parts = parts
                    .singlepart(Attachment::new(name.clone()).body(bytes.clone(), png.clone()));
            }
            builder.multipart(parts)
        }
        .map_err(|e| Failure::Permanent(format!("cannot build the message: {e}")))?;
        let response = self.transport.send(&message).map_err(|e| {
            let why = format!("the mail server: {e}");
            // 5xx: the server refused for good (an unknown recipient, a message too large).
            // Anything else (4xx, a connection refused, a timeout) may pass later.
            if e.is_permanent() {
                Failure::Permanent(why)
            } else {
                Failure::Transient(why)
            }
        })?;
        let said: Vec<&str> = response.message().collect();
        Ok(format!(
            "sent to {} ({} {})",
            to.join(", "),
            response.code(),
            said.join(" ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// An SMTP server on loopback that takes the sender and answers every recipient with
    /// `rcpt_reply`, for one connection.
    fn server(rcpt_reply: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut out = stream.try_clone().expect("clone");
            let _ = out.write_all(b"220 test ESMTP\r\n");
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
                let reply = match verb.as_str() {
                    "EHLO" | "HELO" => "250 test\r\n",
                    "MAIL" | "RSET" => "250 ok\r\n",
                    "RCPT" => rcpt_reply,
                    "QUIT" => "221 bye\r\n",
                    _ => "502 no\r\n",
                };
                let _ = out.write_all(reply.as_bytes());
            }
        });
        port
    }

    fn send_through(port: u16) -> Result<String, Failure> {
        let mailer = Mailer::new(&EmailConfig {
            url: format!("smtp://127.0.0.1:{port}"),
            from: "vigilo <v@example.com>".into(),
            attach_screenshots: false,
        })
        .expect("mailer");
        mailer.send(&["soc@example.com".into()], "s", "b", &[])
    }

    #[test]
    fn a_refused_recipient_is_permanent_and_a_busy_server_transient() {
        let refused = send_through(server("550 5.1.1 no such user\r\n")).expect_err("refused");
        assert!(matches!(refused, Failure::Permanent(_)), "{refused:?}");
        assert!(refused.to_string().contains("no such user"), "{refused}");
        let busy = send_through(server("451 4.3.0 try later\r\n")).expect_err("busy");
        assert!(busy.is_transient(), "{busy:?}");
        let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = closed.local_addr().expect("addr").port();
        drop(closed);
        assert!(
            send_through(port)
                .expect_err("nothing there")
                .is_transient()
        );
    }
}
