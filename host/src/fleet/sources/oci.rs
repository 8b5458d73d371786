//! A pack in an OCI registry: one artifact whose manifest has a vigilo config and two layers,
//! the archive and its minisign signature — pushed by `vigilo pack push`, pulled by agents.
//!
//! A registry is where organisations already keep what their machines run, with its own
//! access control, mirroring and retention, and falcoctl distributes Falco's rules the same
//! way. The registry is trusted no more than the bus: the signature layer is checked against
//! the agent's own keys, and each blob's digest against the manifest.
//!
//! Polling asks only for the manifest's digest (`HEAD`); the manifest and its blobs are pulled
//! when the digest moved, the manifest pinned to that digest so a tag moved in between cannot
//! mix two versions. Blobs are read no further than a pack may be; the manifest is read whole
//! by `oci-client` (it has no bound), which the poll's two-minute deadline limits.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use super::{BadSource, Fetched, MAX_SIGNATURE_BYTES, PackSourceSettings};
use crate::fleet::FetchError;
use crate::fleet::packs::MAX_PACK_BYTES;

/// How a pack source names a registry's artifact.
pub const SCHEME: &str = "oci://";

/// The artifact's type, and its config's media type.
pub const ARTIFACT_TYPE: &str = "application/vnd.vigilo.pack.v1";
/// The config's media type (a small JSON: the pack's name and version).
const CONFIG_MEDIA_TYPE: &str = "application/vnd.vigilo.pack.config.v1+json";
/// The archive layer's media type.
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.vigilo.pack.layer.v1.tar+gzip";
/// The signature layer's media type (a `.minisig` file's text).
pub const SIGNATURE_MEDIA_TYPE: &str = "application/vnd.vigilo.pack.signature.v1.minisig";

/// The largest manifest accepted (two layers and a config take well under 2 KiB).
const MAX_MANIFEST_BYTES: usize = 64 * 1024;

/// The registry reference in an `oci://` address; the registry must be named (`oci://acme/dlp`
/// would otherwise mean Docker Hub's `acme/dlp`, which nobody writing it meant).
pub fn reference(url: &str) -> Result<Reference, BadSource> {
    let bad = |why: String| BadSource {
        url: url.to_string(),
        why,
    };
    let rest = url
        .strip_prefix(SCHEME)
        .ok_or_else(|| bad(format!("an {SCHEME}REGISTRY/REPOSITORY:TAG reference")))?;
    let reference: Reference = rest.parse().map_err(|e| {
        bad(format!(
            "not an OCI reference like {SCHEME}registry.example.com/acme/packs/dlp:1 ({e})"
        ))
    })?;
    if !rest.starts_with(&format!("{}/", reference.registry())) {
        return Err(bad(format!(
            "the reference must start with a registry's host (registry.example.com/… or \
             host:port/…), not {:?}",
            rest.split('/').next().unwrap_or(rest)
        )));
    }
    Ok(reference)
}

/// A client for the registry `settings` name.
fn client(settings_plain_http: bool) -> Client {
    crate::use_ring_for_tls();
    Client::new(ClientConfig {
        protocol: if settings_plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        // An artifact is one manifest, never an index to choose a platform from.
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        user_agent: concat!("vigilo/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

/// An OCI artifact being polled: the manifest digest last taken, to pull only a new one.
pub struct OciSource {
    client: Client,
    url: String,
    reference: Reference,
    taken: Option<String>,
}

impl OciSource {
    /// A source polled as `settings` say.
    pub fn new(settings: &PackSourceSettings) -> Result<OciSource, FetchError> {
        let reference = reference(&settings.url).map_err(|e| FetchError::Wrong(e.to_string()))?;
        Ok(OciSource {
            client: client(settings.plain_http),
            url: settings.url.clone(),
            reference,
            taken: None,
        })
    }

    /// Where it is, as written.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Asks for the manifest's digest, and pulls the archive and its signature if it moved;
    /// `None`: the artifact last taken is still the one the reference names.
    pub async fn poll(&mut self) -> Result<Option<Fetched>, FetchError> {
        let anonymous = RegistryAuth::Anonymous;
        let digest = self
            .client
            .fetch_manifest_digest(&self.reference, &anonymous)
            .await
            .map_err(|e| self.failed(e))?;
        if self.taken.as_deref() == Some(digest.as_str()) {
            return Ok(None);
        }
        let pinned = self.reference.clone_with_digest(digest.clone());
        let (body, _) = self
            .client
            .pull_manifest_raw(&pinned, &anonymous, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| self.failed(e))?;
        let (archive, signature) = self.layers(&body)?;
        let archive = self.blob(&pinned, archive, MAX_PACK_BYTES as usize).await?;
        let signature = self.blob(&pinned, signature, MAX_SIGNATURE_BYTES).await?;
        let signature = String::from_utf8(signature).map_err(|_| {
            FetchError::Wrong(format!(
                "{}: the signature layer is not a minisign signature (not text)",
                self.url
            ))
        })?;
        // Remembered only once both arrived: a failed pull is tried again.
        self.taken = Some(digest);
        Ok(Some(Fetched { archive, signature }))
    }

    /// The archive's and the signature's layers in a manifest: a vigilo pack's, or refused.
    fn layers(&self, body: &[u8]) -> Result<(OciDescriptor, OciDescriptor), FetchError> {
        let wrong = |why: String| FetchError::Wrong(format!("{}: {why}", self.url));
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(wrong(format!(
                "a manifest of {} bytes (a pack's is under {MAX_MANIFEST_BYTES})",
                body.len()
            )));
        }
        let manifest: OciImageManifest = serde_json::from_slice(body)
            .map_err(|e| wrong(format!("not an OCI image manifest ({e})")))?;
        if manifest.config.media_type != CONFIG_MEDIA_TYPE {
            return Err(wrong(format!(
                "not a vigilo pack: its config is {:?}, not {CONFIG_MEDIA_TYPE:?} (push it \
                 with `vigilo pack push`)",
                manifest.config.media_type
            )));
        }
        let one = |media_type: &str| {
            let mut of_type = manifest
                .layers
                .iter()
                .filter(|l| l.media_type == media_type);
            match (of_type.next(), of_type.next()) {
                (Some(layer), None) => Ok(layer.clone()),
                _ => Err(wrong(format!(
                    "a pack has exactly one {media_type:?} layer"
                ))),
            }
        };
        if manifest.layers.len() != 2 {
            return Err(wrong(format!(
                "{} layers; a pack has two (the archive and its signature)",
                manifest.layers.len()
            )));
        }
        Ok((one(ARCHIVE_MEDIA_TYPE)?, one(SIGNATURE_MEDIA_TYPE)?))
    }

    /// A layer's bytes: its announced size checked against `max` first, then no more than
    /// that size read, with the digest the manifest gives.
    async fn blob(
        &self,
        at: &Reference,
        layer: OciDescriptor,
        max: usize,
    ) -> Result<Vec<u8>, FetchError> {
        if !(0..=max as i64).contains(&layer.size) {
            return Err(FetchError::Wrong(format!(
                "{}: a {} layer of {} bytes (at most {max})",
                self.url, layer.media_type, layer.size
            )));
        }
        // No further than the manifest announced: the digest then says whether it is the one.
        let mut out = Bounded {
            bytes: Vec::new(),
            max: layer.size as usize,
        };
        self.client
            .pull_blob(at, &layer, &mut out)
            .await
            .map_err(|e| self.failed(e))?;
        Ok(out.bytes)
    }

    /// What a registry's refusal means: a server in trouble or a network may answer later;
    /// anything else is wrong until someone changes it.
    fn failed(&self, e: OciDistributionError) -> FetchError {
        let text = format!("{}: {e}", self.url);
        match e {
            OciDistributionError::RequestError(_) => FetchError::Again(text),
            OciDistributionError::ServerError { code, .. } if code >= 500 || code == 429 => {
                FetchError::Again(text)
            }
            _ => FetchError::Wrong(text),
        }
    }
}

/// A buffer that refuses to grow past `max` bytes: how a blob is read no further than it may be.
struct Bounded {
    bytes: Vec<u8>,
    max: usize,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.bytes.len() + buf.len() > self.max {
            let max = self.max;
            return Poll::Ready(Err(std::io::Error::other(format!(
                "more than the {max} bytes it may have"
            ))));
        }
        self.bytes.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What `vigilo pack push` could not do.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The reference is not one.
    #[error(transparent)]
    Reference(#[from] BadSource),
    /// The registry refused or did not answer.
    #[error("{0}")]
    Registry(String),
}

/// Pushes a signed pack to `url` (`oci://REGISTRY/REPOSITORY:TAG`) as an artifact agents
/// poll: config `{name, version}`, the archive and its signature as layers. Returns the
/// manifest's address.
pub async fn push(
    url: &str,
    plain_http: bool,
    archive: Vec<u8>,
    signature: String,
    (name, version): (&str, &str),
) -> Result<String, PushError> {
    let reference = reference(url)?;
    let config = serde_json::json!({ "name": name, "version": version }).to_string();
    let title = |t: String| Some(BTreeMap::from([(ANNOTATION_TITLE.to_string(), t)]));
    let layers = [
        ImageLayer::new(
            archive,
            ARCHIVE_MEDIA_TYPE.into(),
            title(format!("{name}-{version}.tar.gz")),
        ),
        ImageLayer::new(
            signature.into_bytes(),
            SIGNATURE_MEDIA_TYPE.into(),
            title(format!("{name}-{version}.tar.gz.minisig")),
        ),
    ];
    let config = Config::new(config.into_bytes(), CONFIG_MEDIA_TYPE.into(), None);
    let mut manifest = OciImageManifest::build(
        &layers,
        &config,
        Some(BTreeMap::from([
            (ANNOTATION_TITLE.to_string(), name.to_string()),
            (ANNOTATION_VERSION.to_string(), version.to_string()),
        ])),
    );
    manifest.artifact_type = Some(ARTIFACT_TYPE.into());
    let pushed = client(plain_http)
        .push(
            &reference,
            &layers,
            config,
            &RegistryAuth::Anonymous,
            Some(manifest),
        )
        .await
        .map_err(|e| PushError::Registry(format!("{url}: {e}")))?;
    Ok(pushed.manifest_url)
}

/// The OCI annotation keys for what a thing is called and which version it is.
const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
const ANNOTATION_VERSION: &str = "org.opencontainers.image.version";

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> OciSource {
        OciSource::new(&crate::fleet::sources::tests::source(
            "oci://registry.example.com/acme/packs/dlp:1",
            None,
        ))
        .expect("source")
    }

    fn manifest(config: &str, layers: &[(&str, i64)]) -> Vec<u8> {
        let layers: Vec<_> = layers
            .iter()
            .map(|(t, size)| {
                serde_json::json!({"mediaType": t, "size": size,
                    "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"})
            })
            .collect();
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "config": {"mediaType": config, "size": 2,
                "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
            "layers": layers,
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_manifest_that_is_not_a_packs_is_refused_with_what_a_pack_has() {
        let s = source();
        let (archive, signature) = s
            .layers(&manifest(
                CONFIG_MEDIA_TYPE,
                &[(SIGNATURE_MEDIA_TYPE, 300), (ARCHIVE_MEDIA_TYPE, 9000)],
            ))
            .expect("a pack");
        assert_eq!((archive.size, signature.size), (9000, 300));
        let refused = |body: Vec<u8>| match s.layers(&body) {
            Err(FetchError::Wrong(why)) => why,
            other => panic!("not refused: {:?}", other.map(|_| ())),
        };
        let image = refused(manifest(
            "application/vnd.oci.image.config.v1+json",
            &[(ARCHIVE_MEDIA_TYPE, 1), (SIGNATURE_MEDIA_TYPE, 1)],
        ));
        assert!(image.contains("not a vigilo pack"), "{image}");
        let unsigned = refused(manifest(CONFIG_MEDIA_TYPE, &[(ARCHIVE_MEDIA_TYPE, 1)]));
        assert!(unsigned.contains("1 layers; a pack has two"), "{unsigned}");
        let twice = refused(manifest(
            CONFIG_MEDIA_TYPE,
            &[(ARCHIVE_MEDIA_TYPE, 1), (ARCHIVE_MEDIA_TYPE, 1)],
        ));
        assert!(twice.contains("exactly one"), "{twice}");
        let huge = refused(vec![b' '; MAX_MANIFEST_BYTES + 1]);
        assert!(huge.contains("a manifest of"), "{huge}");
        assert!(refused(b"{".to_vec()).contains("not an OCI image manifest"));
    }

    #[test]
    fn a_buffer_is_refused_past_its_bound() {
        use tokio::io::AsyncWriteExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let mut b = Bounded {
                bytes: Vec::new(),
                max: 10,
            };
            b.write_all(b"0123456789").await.expect("fits");
            let e = b.write_all(b"x").await.expect_err("past the bound");
            assert!(e.to_string().contains("more than the 10 bytes"), "{e}");
            assert_eq!(b.bytes.len(), 10);
        });
    }
}
