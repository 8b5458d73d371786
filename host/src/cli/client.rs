//! The client side of a running agent's admin API, shared by `vigilo pack …` and
//! `vigilo status`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{EXIT_INVALID, EXIT_OK};

/// How to reach a running agent's admin API.
#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// The API's address [default: from DATA_DIR/admin-address, written by `vigilo run`].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The admin token's file [default: DATA_DIR/admin-token].
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
}

/// A client of a running agent's admin API.
pub struct Client {
    http: reqwest::blocking::Client,
    base: String,
    token: String,
}

/// The token goes wherever the address file points, so a file another user could have written
/// (theirs, or group- or world-writable) is refused rather than believed.
fn trusted_address_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            anyhow::bail!(
                "{} may have been written by another user (owner {}, mode {:o}); not sending the \
                 admin token there: give --url, or remove the file and restart the agent",
                path.display(),
                meta.uid(),
                meta.mode() & 0o777
            );
        }
    }
    Ok(())
}

impl Client {
    /// A client of the agent whose address and token are in `data_dir` (or given in `api`).
    pub fn new(api: &ApiArgs, data_dir: &Path) -> Result<Client> {
        let base = match &api.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let path = data_dir.join(crate::data_dir::ADMIN_ADDRESS);
                let addr = std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "no running agent found ({} is missing; start `vigilo run`, or give --url)",
                        path.display()
                    )
                })?;
                trusted_address_file(&path)?;
                format!("http://{}", addr.trim())
            }
        };
        let token_path = api
            .token_file
            .clone()
            .unwrap_or_else(|| crate::agent::token::token_path(data_dir));
        let token = crate::secret::read(&token_path)?;
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()?;
        Ok(Client { http, base, token })
    }

    /// A GET of the API's `path`, with no token yet.
    pub fn get(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    /// A POST to the API's `path`, with no token yet.
    pub fn post(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.post(format!("{}{path}", self.base))
    }

    /// A PUT to the API's `path`, with no token yet.
    pub fn put(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.put(format!("{}{path}", self.base))
    }

    /// A DELETE of the API's `path`, with no token yet.
    pub fn delete(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.delete(format!("{}{path}", self.base))
    }

    /// Sends with the token and the local user's name; prints the answer with `show`, or the
    /// refusal with every reason. Exit codes: 0 done, 2 refused, 1 anything else.
    pub fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
        show: impl FnOnce(&serde_json::Value),
    ) -> Result<u8> {
        let mut request = request.bearer_auth(&self.token);
        if let Ok(user) = std::env::var("USER") {
            request = request.header("x-vigilo-actor", user);
        }
        let response = request.send().context("cannot reach the agent")?;
        let status = response.status();
        let body: serde_json::Value = response.json().unwrap_or_default();
        if status.is_success() {
            show(&body);
            return Ok(EXIT_OK);
        }
        eprintln!(
            "error: {} ({status})",
            body["error"].as_str().unwrap_or("the agent refused")
        );
        for e in body["errors"].as_array().into_iter().flatten() {
            eprintln!("  {}", e.as_str().unwrap_or_default());
        }
        Ok(if status.is_client_error() {
            EXIT_INVALID
        } else {
            super::EXIT_FAILURE
        })
    }

    /// [`Client::send`] for an answer of a known shape: `show` gets it typed, and the raw JSON
    /// for `--json`. An answer this vigilo cannot read (an agent of another release) is said,
    /// not shown as blanks (exit 1).
    pub fn send_as<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::blocking::RequestBuilder,
        show: impl FnOnce(&T, &serde_json::Value),
    ) -> Result<u8> {
        let mut unreadable = None;
        let code = self.send(request, |body| {
            match serde_json::from_value::<T>(body.clone()) {
                Ok(answer) => show(&answer, body),
                Err(e) => unreadable = Some(e),
            }
        })?;
        match unreadable {
            Some(e) => {
                eprintln!("error: the agent's answer is not one this vigilo reads: {e}");
                Ok(super::EXIT_FAILURE)
            }
            None => Ok(code),
        }
    }
}
