//! Whom a TLS client trusts: the certificate authorities of a PEM file, or the system's.
//! One place for every connection vigilo opens itself (syslog over TLS, PostgreSQL).

use std::path::Path;

/// A rustls client configuration trusting the CAs in PEM file `ca`, or the system's
/// certificates (through the platform's verifier) without one.
pub(crate) fn client_config(ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    match ca {
        Some(path) => {
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("ca {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("ca {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("ca {}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("ca {}: no certificate in it", path.display()));
            }
            Ok(rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth())
        }
        None => {
            use rustls_platform_verifier::ConfigVerifierExt;
            rustls::ClientConfig::with_platform_verifier()
                .map_err(|e| format!("the system's certificates: {e}"))
        }
    }
}
