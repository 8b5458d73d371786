//! E-mail through the site's SMTP server (lettre; TLS or STARTTLS by the URL, with the
//! system's certificate store), with the alarm's screenshots attached when asked.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Message, SmtpTransport, Transport};

use serde::Deserialize;

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

    /// Sends one message; says what the server answered, or why it was not sent.
    pub fn send(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
        attachments: &[(String, Vec<u8>)],
    ) -> Result<String, String> {
        let mut builder = Message::builder().from(self.from.clone()).subject(subject);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| format!("recipient {address}: {e}"))?;
            builder = builder.to(mailbox);
        }
        let text = SinglePart::builder()
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_string());
        let message = if attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let png = ContentType::parse("image/png").map_err(|e| e.to_string())?;
            let mut parts = MultiPart::mixed().singlepart(text);
            for (name, bytes) in attachments {
                parts = parts
                    .singlepart(Attachment::new(name.clone()).body(bytes.clone(), png.clone()));
            }
            builder.multipart(parts)
        }
        .map_err(|e| format!("cannot build the message: {e}"))?;
        let response = self
            .transport
            .send(&message)
            .map_err(|e| format!("the mail server: {e}"))?;
        let said: Vec<&str> = response.message().collect();
        Ok(format!(
            "sent to {} ({} {})",
            to.join(", "),
            response.code(),
            said.join(" ")
        ))
    }
}
