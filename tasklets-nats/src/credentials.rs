//! How a node proves who it is to the NATS server, and which server it trusts: user and password,
//! token, nkey, `.creds` file, TLS client certificate, certificate authorities; and the async-nats
//! options they make, checked at [`connect`](crate::connect).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::{Error, NodeOptions};

/// The credentials and TLS settings of a node. Its `Debug` names what is set, never a secret.
#[derive(Clone, Default)]
pub(crate) struct Credentials {
    user_and_password: Option<(String, String)>,
    token: Option<String>,
    nkey: Option<String>,
    creds_file: Option<PathBuf>,
    client_certificate: Option<(PathBuf, PathBuf)>,
    root_certificates: Option<PathBuf>,
    require_tls: bool,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user_and_password.as_ref().map(|(u, _)| u))
            .field("password", &self.user_and_password.as_ref().map(|_| "…"))
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("nkey", &self.nkey.as_ref().map(|_| "…"))
            .field("creds_file", &self.creds_file)
            .field("client_certificate", &self.client_certificate)
            .field("root_certificates", &self.root_certificates)
            .field("require_tls", &self.require_tls)
            .finish()
    }
}

impl NodeOptions {
    /// Authenticates the node with a user name and a password (a server with `authorization {
    /// users: [...] }` or an account's `users`). Credentials in the URL
    /// (`nats://user:password@host:4222`) do the same; these take precedence over them.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets_nats::{connect, NodeOptions};
    ///
    /// let rt = tasklets::Runtime::new();
    /// let opts = NodeOptions::new("node-a").user_and_password("node-a", "s3cret");
    /// let node = connect(&rt.handle(), "nats://127.0.0.1:4222", opts)?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn user_and_password(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> NodeOptions {
        self.credentials.user_and_password = Some((user.into(), password.into()));
        self
    }

    /// Authenticates the node with a token (a server with `authorization { token: ... }`). A URL
    /// with a user and no password (`nats://TOKEN@host:4222`) does the same; this takes precedence.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets_nats::{connect, NodeOptions};
    ///
    /// let rt = tasklets::Runtime::new();
    /// let opts = NodeOptions::new("node-a").token("a-long-random-token");
    /// let node = connect(&rt.handle(), "nats://127.0.0.1:4222", opts)?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> NodeOptions {
        self.credentials.token = Some(token.into());
        self
    }

    /// Authenticates the node with the nkey whose seed is `seed` (`SU...`, a user seed as `nk -gen
    /// user` or `nsc` make): the server knows the public key only, and the node signs its
    /// challenge.
    ///
    /// A seed that is not a valid nkey seed is [`Error::Credentials`] at [`connect`](crate::connect).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets_nats::{connect, NodeOptions};
    ///
    /// let rt = tasklets::Runtime::new();
    /// let seed = std::fs::read_to_string("/etc/tasklets/node-a.nk")?;
    /// let opts = NodeOptions::new("node-a").nkey(seed.trim());
    /// let node = connect(&rt.handle(), "nats://127.0.0.1:4222", opts)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nkey(mut self, seed: impl Into<String>) -> NodeOptions {
        self.credentials.nkey = Some(seed.into());
        self
    }

    /// Authenticates the node with a `.creds` file (a user JWT and its nkey seed, as `nsc` writes
    /// them for a server in operator mode). The file is read at [`connect`](crate::connect): one
    /// that cannot be read or holds no JWT and seed is [`Error::Credentials`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets_nats::{connect, NodeOptions};
    ///
    /// let rt = tasklets::Runtime::new();
    /// let opts = NodeOptions::new("node-a").credentials_file("/etc/tasklets/node-a.creds");
    /// let node = connect(&rt.handle(), "nats://127.0.0.1:4222", opts)?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn credentials_file(mut self, path: impl Into<PathBuf>) -> NodeOptions {
        self.credentials.creds_file = Some(path.into());
        self
    }

    /// Presents a TLS client certificate (PEM files: the certificate chain and its private key),
    /// for a server with `tls { verify: true }` (or `verify_and_map: true`, where the certificate
    /// names the user). Implies TLS. A file that cannot be read is [`Error::Credentials`] at
    /// [`connect`](crate::connect); one that is not a usable certificate or key is [`Error::Tls`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets_nats::{connect, NodeOptions};
    ///
    /// let rt = tasklets::Runtime::new();
    /// let opts = NodeOptions::new("node-a")
    ///     .root_certificates("/etc/tasklets/ca.pem")
    ///     .client_certificate("/etc/tasklets/node-a.pem", "/etc/tasklets/node-a-key.pem");
    /// let node = connect(&rt.handle(), "tls://nats.internal:4222", opts)?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn client_certificate(
        mut self,
        certificate: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> NodeOptions {
        self.credentials.client_certificate = Some((certificate.into(), key.into()));
        self.credentials.require_tls = true;
        self
    }

    /// Trusts the certificate authorities of this PEM file (one or more certificates) for the
    /// server's certificate, instead of the system's: for a server whose certificate a private CA
    /// signed. Implies TLS. A file that cannot be read is [`Error::Credentials`] at
    /// [`connect`](crate::connect); one with no usable certificate is [`Error::Tls`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use tasklets_nats::{connect, NodeOptions};
    ///
    /// let rt = tasklets::Runtime::new();
    /// let opts = NodeOptions::new("node-a").root_certificates("/etc/tasklets/ca.pem");
    /// let node = connect(&rt.handle(), "nats://nats.internal:4222", opts)?;
    /// # Ok::<(), tasklets_nats::Error>(())
    /// ```
    pub fn root_certificates(mut self, pem_file: impl Into<PathBuf>) -> NodeOptions {
        self.credentials.root_certificates = Some(pem_file.into());
        self.credentials.require_tls = true;
        self
    }

    /// Whether the connection must be TLS (a `tls://` URL requires it too): with `true`, a server
    /// that does not offer TLS is refused ([`Error::Tls`] or [`Error::Connect`] at
    /// [`connect`](crate::connect)) rather than spoken to in clear.
    ///
    /// # Examples
    ///
    /// ```
    /// let opts = tasklets_nats::NodeOptions::new("node-a").require_tls(true);
    /// # let _ = opts;
    /// ```
    pub fn require_tls(mut self, required: bool) -> NodeOptions {
        self.credentials.require_tls = required;
        self
    }

    /// The async-nats options of this node's credentials for a server at `url`, each credential
    /// checked here (files readable, seeds valid) so that a bad one is a typed error at `connect`
    /// rather than a failed handshake. The inbox of the node's requests is `_INBOX.<ns>.<node>`, so
    /// that a permission can keep the answers to one node from the others.
    pub(crate) fn connect_options(&self, url: &str) -> Result<async_nats::ConnectOptions, Error> {
        let c = &self.credentials;
        let mut o = async_nats::ConnectOptions::new()
            .custom_inbox_prefix(format!("_INBOX.{}.{}", self.namespace, self.node));
        match (&c.user_and_password, &c.token, url_credentials(url)) {
            (Some((user, password)), _, _) => {
                o = o.user_and_password(user.clone(), password.clone());
            }
            (None, Some(_), _) => {}
            (None, None, Some(UrlCredentials::UserAndPassword(user, password))) => {
                o = o.user_and_password(user, password);
            }
            (None, None, Some(UrlCredentials::Token(token))) => o = o.token(token),
            (None, None, None) => {}
        }
        if let Some(token) = &c.token {
            o = o.token(token.clone());
        }
        if let Some(seed) = &c.nkey {
            nkeys::KeyPair::from_seed(seed)
                .map_err(|e| Error::Credentials(format!("the nkey seed is not valid: {e}")))?;
            o = o.nkey(seed.clone());
        }
        if let Some(path) = &c.creds_file {
            let text = read(path, "credentials file")?;
            o = o.credentials(&text).map_err(|e| {
                Error::Credentials(format!(
                    "{} is not a valid .creds file (a user JWT and an nkey seed): {e}",
                    path.display()
                ))
            })?;
        }
        if let Some((certificate, key)) = &c.client_certificate {
            read(certificate, "client certificate")?;
            read(key, "client key")?;
            o = o.add_client_certificate(certificate.clone(), key.clone());
        }
        if let Some(path) = &c.root_certificates {
            read(path, "root certificates")?;
            o = o.add_root_certificates(path.clone());
        }
        Ok(o.require_tls(c.require_tls))
    }
}

/// The text of a credential's file; [`Error::Credentials`] naming it when it cannot be read.
fn read(path: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Credentials(format!("cannot read the {what} {}: {e}", path.display())))
}

#[derive(Debug, PartialEq)]
enum UrlCredentials {
    UserAndPassword(String, String),
    Token(String),
}

/// The credentials in a server URL's user part (`nats://user:password@host`, `nats://token@host`),
/// percent-decoded; `None` when it has none (or is not a URL, which `connect` reports).
fn url_credentials(url: &str) -> Option<UrlCredentials> {
    let addr: async_nats::ServerAddr = url.parse().ok()?;
    if !addr.has_user_pass() {
        return None;
    }
    let user = decode(addr.username()?);
    match addr.password() {
        Some(p) if !p.is_empty() => Some(UrlCredentials::UserAndPassword(user, decode(p))),
        _ => Some(UrlCredentials::Token(user)),
    }
}

/// `s` with its `%XX` escapes decoded (an invalid escape is kept as it is).
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_a_user_and_password_or_a_token() {
        assert_eq!(
            url_credentials("nats://ann:p%40ss@127.0.0.1:4222"),
            Some(UrlCredentials::UserAndPassword("ann".into(), "p@ss".into()))
        );
        assert_eq!(
            url_credentials("tls://t0k3n@nats.internal"),
            Some(UrlCredentials::Token("t0k3n".into()))
        );
        assert_eq!(url_credentials("nats://127.0.0.1:4222"), None);
        assert_eq!(url_credentials("not a url"), None);
    }

    #[test]
    fn the_debug_of_credentials_shows_no_secret() {
        let opts = NodeOptions::new("a")
            .user_and_password("ann", "hunter2")
            .token("t0k3n")
            .nkey("SUAM-not-shown");
        let shown = format!("{opts:?}");
        assert!(shown.contains("ann"), "{shown}");
        for secret in ["hunter2", "t0k3n", "SUAM"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn a_bad_seed_or_an_unreadable_file_is_a_credentials_error() {
        let bad_seed = NodeOptions::new("a")
            .nkey("SUnotaseed")
            .connect_options("nats://h");
        assert!(matches!(bad_seed, Err(Error::Credentials(_))));
        let missing = NodeOptions::new("a")
            .credentials_file("/nonexistent/node.creds")
            .connect_options("nats://h");
        assert!(matches!(missing, Err(Error::Credentials(m)) if m.contains("/nonexistent")));
        let no_key = NodeOptions::new("a")
            .client_certificate("/nonexistent/cert.pem", "/nonexistent/key.pem")
            .connect_options("nats://h");
        assert!(matches!(no_key, Err(Error::Credentials(_))));
    }
}
