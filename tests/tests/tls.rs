//! HTTPS in the server itself (`WANGGE_TLS_CERT`, `WANGGE_TLS_KEY`): a client that
//! trusts the city's private certificate authority logs in and syncs over TLS, plain HTTP to
//! the TLS port gets no answer, and a key that does not fit the certificate stops the
//! server at start with a message naming the files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use wangge_tests::{Server, add_user, answer, wangge};

const PASSWORD: &str = "加密-2026-ok";

fn openssl(args: &[&std::ffi::OsStr]) {
    let status = std::process::Command::new("openssl")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (Debian's openssl package)");
    assert!(status.success(), "openssl {args:?}");
}

/// A city's private certificate authority and a server certificate for 127.0.0.1 it
/// signed, made with the openssl tool: (the authority's certificate, the server's
/// certificate, the server's key).
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let path = |file: &str| dir.join(format!("{name}-{file}"));
    let os = |p: &PathBuf| p.as_os_str().to_owned();
    let (ca, ca_key, csr, cert, key, ext) = (
        path("ca.pem"),
        path("ca-key.pem"),
        path("server.csr"),
        path("server.pem"),
        path("server-key.pem"),
        path("server.ext"),
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut args: Vec<std::ffi::OsString> = ["req", "-x509"].iter().map(Into::into).collect();
    args.extend(ec.iter().map(Into::into));
    args.extend(
        ["-days", "2", "-subj", "/CN=city CA"]
            .iter()
            .map(Into::into),
    );
    args.extend(["-keyout".into(), os(&ca_key), "-out".into(), os(&ca)]);
    openssl(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    let mut args: Vec<std::ffi::OsString> = ["req"].iter().map(Into::into).collect();
    args.extend(ec.iter().map(Into::into));
    args.extend(["-subj", "/CN=wangge"].iter().map(Into::into));
    args.extend(["-keyout".into(), os(&key), "-out".into(), os(&csr)]);
    openssl(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    std::fs::write(
        &ext,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
         extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("extensions");
    let mut args: Vec<std::ffi::OsString> = ["x509", "-req", "-days", "2", "-CAcreateserial"]
        .iter()
        .map(Into::into)
        .collect();
    args.extend([
        "-in".into(),
        os(&csr),
        "-CA".into(),
        os(&ca),
        "-CAkey".into(),
    ]);
    args.extend([
        os(&ca_key),
        "-extfile".into(),
        os(&ext),
        "-out".into(),
        os(&cert),
    ]);
    openssl(&args.iter().map(|a| a.as_os_str()).collect::<Vec<_>>());
    (ca, cert, key)
}

#[test]
fn the_server_speaks_https_with_the_operators_certificate() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("tls.db").display());
    add_user(
        &url,
        "w1",
        "sanitation_worker",
        Some("sanitation"),
        "410102001001",
        PASSWORD,
    );
    let (authority, cert, key) = certificate(dir.path(), "city");
    let server = Server::start(
        &url,
        &[
            ("WANGGE_TLS_CERT", cert.to_str().expect("UTF-8")),
            ("WANGGE_TLS_KEY", key.to_str().expect("UTF-8")),
        ],
    );
    assert!(
        server.base_url.starts_with("https://"),
        "{}",
        server.base_url
    );

    let authority =
        ureq::tls::Certificate::from_pem(&std::fs::read(&authority).expect("CA")).expect("PEM");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![authority])))
                .build(),
        )
        .build()
        .into();
    let (status, session) = answer(agent.post(server.url("/v1/auth/login")).send_json(json!({
        "user": "w1", "password": PASSWORD, "device": { "name": "Redmi 12" }
    })));
    assert_eq!(status, 200, "{session}");
    let token = session["access_token"].as_str().expect("token");
    let (status, me) = answer(
        agent
            .get(server.url("/v1/me"))
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    );
    assert_eq!((status, me["sub"].as_str()), (200, Some("w1")));

    // A client that does not trust the certificate is refused by its own TLS check.
    assert!(
        wangge_tests::http()
            .get(server.url("/healthz"))
            .call()
            .is_err()
    );
    // Plain HTTP to the TLS port: no HTTP answer.
    let plain = server.url("/healthz").replacen("https://", "http://", 1);
    let answered = wangge_tests::http()
        .get(&plain)
        .call()
        .map(|r| r.status().as_u16());
    assert!(!matches!(answered, Ok(200)), "{answered:?}");
    let (status, _) = answer(agent.get(server.url("/healthz")).call());
    assert_eq!(status, 200);
    drop(server);

    // Another certificate's key: the server does not start, and says why.
    let (_, _, other_key) = certificate(dir.path(), "other");
    let output = wangge()
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &url])
        .env("WANGGE_TLS_CERT", &cert)
        .env("WANGGE_TLS_KEY", &other_key)
        .output()
        .expect("wangge");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
    // Only one of the two: refused too.
    let output = wangge()
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &url])
        .env("WANGGE_TLS_CERT", &cert)
        .env_remove("WANGGE_TLS_KEY")
        .output()
        .expect("wangge");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--tls-key"), "{stderr}");
}
