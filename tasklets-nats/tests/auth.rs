//! Authentication against a real nats-server started from a configuration file: user and
//! password, token, nkeys, a `.creds` file in operator mode and TLS with a client certificate, each
//! refusing a node without the credential and letting a message cross between two nodes with it.

mod auth_support;
mod support;

use std::path::Path;

use auth_support::{a_note_crosses, assert_authorization, opts, refused, server, test_dir};
use tasklets_nats::Error;

#[test]
fn user_and_password_refuses_a_node_without_them_and_passes_one_with_them() {
    let dir = test_dir("user");
    let config = r#"authorization { users = [
        { user: alice, password: "alice-secret" }
        { user: "bob", password: "b@b secret" }
    ] }"#;
    let Some(server) = server("user_and_password", dir, config) else {
        return;
    };
    let ns = "userpass";
    assert_authorization(refused(&server.url(), opts("a", ns)));
    assert_authorization(refused(
        &server.url(),
        opts("a", ns).user_and_password("alice", "wrong"),
    ));
    assert_authorization(refused(&server.url_as("alice:wrong"), opts("a", ns)));
    // Node a's credentials in the URL (percent-encoded), node b's in its options.
    a_note_crosses(
        &server.url_as("bob:b%40b%20secret"),
        opts("a", ns),
        &server.url(),
        opts("b", ns).user_and_password("alice", "alice-secret"),
    );
}

#[test]
fn a_token_refuses_a_node_without_it_and_passes_one_with_it() {
    let dir = test_dir("token");
    let Some(server) = server("token", dir, r#"authorization { token: "t0k3n-s3cret" }"#) else {
        return;
    };
    let ns = "token";
    assert_authorization(refused(&server.url(), opts("a", ns)));
    assert_authorization(refused(&server.url(), opts("a", ns).token("guess")));
    a_note_crosses(
        &server.url_as("t0k3n-s3cret"),
        opts("a", ns),
        &server.url(),
        opts("b", ns).token("t0k3n-s3cret"),
    );
}

#[test]
fn nkeys_refuse_a_node_without_a_known_key_and_pass_one_with_it() {
    let (a_key, b_key) = (nkeys::KeyPair::new_user(), nkeys::KeyPair::new_user());
    let stranger = nkeys::KeyPair::new_user();
    let dir = test_dir("nkeys");
    let config = format!(
        "authorization {{ users = [ {{ nkey: {} }}, {{ nkey: {} }} ] }}",
        a_key.public_key(),
        b_key.public_key()
    );
    let Some(server) = server("nkeys", dir, &config) else {
        return;
    };
    let ns = "nkeys";
    assert_authorization(refused(&server.url(), opts("a", ns)));
    assert_authorization(refused(
        &server.url(),
        opts("a", ns).nkey(stranger.seed().unwrap()),
    ));
    let bad = refused(&server.url(), opts("a", ns).nkey("SUnotaseed"));
    assert!(matches!(bad, Error::Credentials(_)), "{bad:?}");
    a_note_crosses(
        &server.url(),
        opts("a", ns).nkey(a_key.seed().unwrap()),
        &server.url(),
        opts("b", ns).nkey(b_key.seed().unwrap()),
    );
}

/// A certificate authority, a server certificate for 127.0.0.1 and a client certificate for each
/// of `clients`, all signed by it, as PEM files in `dir`: `ca.pem`, `server.pem`,
/// `server-key.pem`, `<client>.pem`, `<client>-key.pem`.
fn certificates(dir: &Path, clients: &[&str]) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tasklets test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |name: &str, sans: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let mut params = CertificateParams::new(sans).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}-key.pem")), key.serialize_pem()).unwrap();
    };
    leaf(
        "server",
        vec!["127.0.0.1".into(), "localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    for client in clients {
        leaf(
            client,
            vec![(*client).into()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
    }
}

#[test]
fn tls_with_verify_refuses_a_node_without_a_client_certificate_and_passes_one_with_it() {
    let dir = test_dir("tls");
    certificates(&dir, &["node-a", "node-b"]);
    let f = |name: &str| dir.join(name);
    let config = format!(
        "tls {{ cert_file: {:?}, key_file: {:?}, ca_file: {:?}, verify: true, timeout: 5 }}",
        f("server.pem"),
        f("server-key.pem"),
        f("ca.pem")
    );
    let Some(server) = server("tls", dir.clone(), &config) else {
        return;
    };
    let ns = "tls";
    let with_cert = |node: &str| {
        opts(node, ns)
            .root_certificates(f("ca.pem"))
            .client_certificate(f(&format!("{node}.pem")), f(&format!("{node}-key.pem")))
    };
    // The server's certificate is trusted, but the node presents none.
    let no_cert = refused(&server.url(), opts("a", ns).root_certificates(f("ca.pem")));
    println!("without a client certificate: {no_cert}");
    assert!(matches!(no_cert, Error::Tls(_)), "{no_cert:?}");
    // The node presents its certificate, but does not trust the server's (no CA: the system's).
    let untrusted = refused(
        &server.url(),
        opts("a", ns)
            .client_certificate(f("node-a.pem"), f("node-a-key.pem"))
            .require_tls(true),
    );
    println!("without the CA: {untrusted}");
    assert!(matches!(untrusted, Error::Tls(_)), "{untrusted:?}");
    // An unreadable key is the node's own mistake, found before the server is contacted.
    let missing = refused(
        &server.url(),
        opts("a", ns).client_certificate(f("node-a.pem"), f("no-such-key.pem")),
    );
    assert!(
        matches!(&missing, Error::Credentials(m) if m.contains("no-such-key.pem")),
        "{missing:?}"
    );
    a_note_crosses(
        &server.url(),
        with_cert("node-a"),
        &server.url(),
        with_cert("node-b"),
    );
}

/// Base64 with the URL alphabet and no padding (JWT segments).
fn base64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// A NATS JWT (as `nsc` writes them) for `subject`'s public key, issued and signed by `issuer`,
/// with these `nats` claims.
fn jwt(issuer: &nkeys::KeyPair, subject: &str, name: &str, nats: serde_json::Value) -> String {
    let header = base64url(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("{name}-{iat}"),
        "iat": iat,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    let body = format!("{header}.{}", base64url(claims.to_string().as_bytes()));
    let signature = issuer.sign(body.as_bytes()).unwrap();
    format!("{body}.{}", base64url(&signature))
}

#[test]
fn a_creds_file_in_operator_mode_passes_a_node_and_a_node_without_one_is_refused() {
    let (operator, account) = (
        nkeys::KeyPair::new_operator(),
        nkeys::KeyPair::new_account(),
    );
    let operator_jwt = jwt(
        &operator,
        &operator.public_key(),
        "tasklets-test",
        serde_json::json!({ "type": "operator", "version": 2 }),
    );
    let account_jwt = jwt(
        &operator,
        &account.public_key(),
        "TASKLETS",
        serde_json::json!({
            "limits": { "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                        "wildcards": true, "conn": -1, "leaf": -1 },
            "default_permissions": { "pub": {}, "sub": {} },
            "type": "account", "version": 2
        }),
    );
    let dir = test_dir("creds");
    let creds = |node: &str| {
        let user = nkeys::KeyPair::new_user();
        let user_jwt = jwt(
            &account,
            &user.public_key(),
            node,
            serde_json::json!({ "pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1,
                                "type": "user", "version": 2 }),
        );
        let file = dir.join(format!("{node}.creds"));
        std::fs::write(
            &file,
            format!(
                "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
                 -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
                user.seed().unwrap()
            ),
        )
        .unwrap();
        file
    };
    let (a_creds, b_creds) = (creds("node-a"), creds("node-b"));
    let garbage = dir.join("garbage.creds");
    std::fs::write(&garbage, "not a creds file").unwrap();
    let config = format!(
        "operator: {operator_jwt}\nresolver: MEMORY\nresolver_preload: {{\n  {}: {account_jwt}\n}}\n",
        account.public_key()
    );
    let Some(server) = server("creds", dir.clone(), &config) else {
        return;
    };
    let ns = "creds";
    assert_authorization(refused(&server.url(), opts("a", ns)));
    let bad = refused(&server.url(), opts("a", ns).credentials_file(&garbage));
    assert!(matches!(bad, Error::Credentials(_)), "{bad:?}");
    a_note_crosses(
        &server.url(),
        opts("a", ns).credentials_file(a_creds),
        &server.url(),
        opts("b", ns).credentials_file(b_creds),
    );
}
