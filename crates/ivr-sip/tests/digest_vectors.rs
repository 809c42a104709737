//! Digest responses against published vectors (RFC 2617 sec. 3.5, RFC 7616
//! sec. 3.9.1) and SIP cases whose expected values were computed
//! independently with Python's hashlib (the snippet is beside each value).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use ivr_sip::auth::{
    best_challenge, respond, Algorithm, AuthError, Challenge, Credentials, NonceIssuer, Qop,
    Request, Secret,
};

fn get(uri: &str) -> Request<'_> {
    Request {
        method: "GET",
        uri,
        body: b"",
    }
}

#[test]
fn rfc2617_mufasa_example() {
    let ch = Challenge::parse(
        r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
    )
    .unwrap();
    assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
    let c = respond(
        &ch,
        &get("/dir/index.html"),
        "Mufasa",
        "Circle Of Life",
        "0a4f113b",
        1,
    )
    .unwrap();
    assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(
        c.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(c.qop, Some(Qop::Auth));
}

#[test]
fn rfc7616_md5_and_sha256_examples() {
    let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    let sha = Challenge::parse(&format!(
        r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="{nonce}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
    ))
    .unwrap();
    let md5 = Challenge::parse(&format!(
        r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="{nonce}", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
    ))
    .unwrap();
    let r = get("/dir/index.html");
    assert_eq!(
        respond(&sha, &r, "Mufasa", "Circle of Life", cnonce, 1)
            .unwrap()
            .response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(
        respond(&md5, &r, "Mufasa", "Circle of Life", cnonce, 1)
            .unwrap()
            .response,
        "8ca523f5e9506fed4657c9700eebdbec"
    );
}

// Expected values computed with:
//   H=lambda a,s: hashlib.new(a, s.encode()).hexdigest()
//   ha1=H(a,"ivr-trunk:sip.example.dk:s3cret!"); ha2=H(a,"REGISTER:sip:sip.example.dk")
//   H(a, f"{ha1}:5f2a1c3b4d:{nc}:0a1b2c3d:auth:{ha2}")
#[test]
fn sip_register_md5_sha256_sha512_256() {
    let reg = Request {
        method: "REGISTER",
        uri: "sip:sip.example.dk",
        body: b"",
    };
    let cases = [
        ("MD5", 1, "7e67c8e1f2cfe1266365434fae92af1a"),
        (
            "SHA-256",
            2,
            "3bcb7bf14b803caeabba76f894725aaf3468419f3a1f229b6b8a48c1700daa63",
        ),
        (
            "SHA-512-256",
            1,
            "ffe089a777e956a41493f3562b95c3c1cd20a2b4e2d157cc35738ebcc2033fc1",
        ),
        // MD5-sess: ha1 = H(H("ivr-trunk:sip.example.dk:s3cret!") + ":5f2a1c3b4d:0a1b2c3d")
        ("MD5-sess", 1, "88daee032e5790b4c565cf423c2a8b28"),
    ];
    for (alg, nc, want) in cases {
        let ch = Challenge::parse(&format!(
            "Digest realm=\"sip.example.dk\", nonce=\"5f2a1c3b4d\", algorithm={alg}, qop=\"auth\""
        ))
        .unwrap();
        let c = respond(&ch, &reg, "ivr-trunk", "s3cret!", "0a1b2c3d", nc).unwrap();
        assert_eq!(c.response, want, "{alg}");
        let printed = c.to_string();
        assert!(printed.contains(&format!("nc={nc:08x}")), "{printed}");
        assert!(printed.contains(&format!("algorithm={alg}")), "{printed}");
        assert_eq!(Credentials::parse(&printed).unwrap(), c);
    }
}

// Asterisk without qop (RFC 2069 form):
//   H("md5", H("md5","bob:asterisk:zanzibar")+":4a1f2b3c:"+H("md5","INVITE:sip:100@192.0.2.1"))
#[test]
fn asterisk_style_challenge_without_qop() {
    let ch =
        Challenge::parse(r#"Digest algorithm=MD5, realm="asterisk", nonce="4a1f2b3c""#).unwrap();
    let inv = Request {
        method: "INVITE",
        uri: "sip:100@192.0.2.1",
        body: b"v=0\r\n",
    };
    let c = respond(&ch, &inv, "bob", "zanzibar", "unused", 1).unwrap();
    assert_eq!(c.response, "402795f41684140d9ef3c9d37c36b332");
    assert_eq!(
        c.to_string(),
        r#"Digest username="bob", realm="asterisk", nonce="4a1f2b3c", uri="sip:100@192.0.2.1", response="402795f41684140d9ef3c9d37c36b332", algorithm=MD5"#
    );
}

// auth-int hashes the body: ha2 = H("INVITE:sip:100@192.0.2.1:" + H("v=0\r\n"))
#[test]
fn auth_int_only_challenge_hashes_the_body() {
    let ch =
        Challenge::parse(r#"Digest realm="asterisk", nonce="4a1f2b3c", qop="auth-int""#).unwrap();
    let inv = Request {
        method: "INVITE",
        uri: "sip:100@192.0.2.1",
        body: b"v=0\r\n",
    };
    let c = respond(&ch, &inv, "bob", "zanzibar", "cafe", 1).unwrap();
    assert_eq!(c.qop, Some(Qop::AuthInt));
    assert_eq!(c.response, "6dce9a0272476f6079466a022ef19adc");
}

#[test]
fn strongest_supported_challenge_wins() {
    let best = best_challenge([
        r#"Digest realm="r", nonce="n1", algorithm=MD5, qop="auth""#,
        r#"Digest realm="r", nonce="n2", algorithm=SHA-1, qop="auth""#,
        r#"Digest realm="r", nonce="n3", algorithm=SHA-256, qop="auth""#,
    ])
    .unwrap();
    assert_eq!(
        (best.algorithm, best.nonce.as_str()),
        (Algorithm::Sha256, "n3")
    );
    assert_eq!(
        best_challenge([r#"Digest realm="r", nonce="n", algorithm=SHA-1"#]),
        Err(AuthError::UnsupportedAlgorithm("SHA-1".into()))
    );
}

#[test]
fn challenge_parsing_edge_cases() {
    // Unquoted values, odd case, stale flag, unknown params kept.
    let ch =
        Challenge::parse("digest REALM=sip.example.dk,NONCE=abc/def==,Stale=TRUE, charset=UTF-8");
    // `=` is not a token character, so base64 padding must be quoted.
    assert!(matches!(ch, Err(AuthError::Malformed(_))));
    let ch = Challenge::parse(
        "digest REALM=sip.example.dk,NONCE=\"abc/def==\",Stale=TRUE, charset=UTF-8",
    )
    .unwrap();
    assert_eq!(ch.realm, "sip.example.dk");
    assert!(ch.stale);
    assert_eq!(ch.other, vec![("charset".into(), "UTF-8".into())]);
    assert_eq!(
        Challenge::parse(r#"Digest realm="a", realm="b", nonce="n""#),
        Err(AuthError::DuplicateParam("realm".into()))
    );
    assert_eq!(
        Challenge::parse(r#"Digest realm="a""#),
        Err(AuthError::MissingParam("nonce"))
    );
    assert_eq!(
        Challenge::parse(r#"Digest realm="a", nonce="n", qop="auth-conf""#),
        Err(AuthError::UnsupportedQop)
    );
}

const SECRET: &[u8] = b"test-secret-16-bytes-at-least!!";
const T0: u64 = 1_763_900_000;

fn server() -> NonceIssuer {
    NonceIssuer::new(SECRET, "ivr.example.dk", Algorithm::Sha256, 300)
}

fn client_answer(ch: &Challenge, password: &str) -> Credentials {
    let r = Request {
        method: "INVITE",
        uri: "sip:ivr@ivr.example.dk",
        body: b"",
    };
    let printed = respond(ch, &r, "trunk1", password, "c0ffee", 1)
        .unwrap()
        .to_string();
    Credentials::parse(&printed).unwrap()
}

#[test]
fn server_accepts_right_password_within_lifetime() {
    let s = server();
    let creds = client_answer(&s.challenge(T0, false), "pw");
    assert_eq!(
        s.verify(&creds, "INVITE", b"", Secret::Password("pw"), T0 + 10),
        Ok(())
    );
    // Same check with the stored H(A1) instead of the password:
    // hashlib.sha256(b"trunk1:ivr.example.dk:pw").hexdigest()
    let ha1 = "21234ebb95451f21c35fe802344fe66f990514775144cc68989f049e6e3bd77a";
    assert_eq!(
        s.verify(&creds, "INVITE", b"", Secret::Ha1(ha1), T0 + 10),
        Ok(())
    );
}

#[test]
fn server_rejects_wrong_password_and_wrong_method() {
    let s = server();
    let creds = client_answer(&s.challenge(T0, false), "guess");
    assert_eq!(
        s.verify(&creds, "INVITE", b"", Secret::Password("pw"), T0),
        Err(AuthError::WrongResponse)
    );
    let creds = client_answer(&s.challenge(T0, false), "pw");
    assert_eq!(
        s.verify(&creds, "BYE", b"", Secret::Password("pw"), T0),
        Err(AuthError::WrongResponse)
    );
}

#[test]
fn expired_nonce_with_right_password_is_stale_not_wrong() {
    let s = server();
    let creds = client_answer(&s.challenge(T0, false), "pw");
    assert_eq!(
        s.verify(&creds, "INVITE", b"", Secret::Password("pw"), T0 + 301),
        Err(AuthError::StaleNonce)
    );
    // Wrong password with an old nonce is still just wrong.
    let creds = client_answer(&s.challenge(T0, false), "nope");
    assert_eq!(
        s.verify(&creds, "INVITE", b"", Secret::Password("pw"), T0 + 301),
        Err(AuthError::WrongResponse)
    );
}

#[test]
fn forged_or_foreign_nonces_are_rejected() {
    let s = server();
    let other = NonceIssuer::new(
        b"another-secret-entirely",
        "ivr.example.dk",
        Algorithm::Sha256,
        300,
    );
    let creds = client_answer(&other.challenge(T0, false), "pw");
    assert_eq!(
        s.verify(&creds, "INVITE", b"", Secret::Password("pw"), T0),
        Err(AuthError::ForeignNonce)
    );
    // Moving the timestamp forward to dodge expiry breaks the MAC.
    let mut ch = s.challenge(T0, false);
    ch.nonce.replace_range(..16, &format!("{:016x}", T0 + 1000));
    let creds = client_answer(&ch, "pw");
    assert_eq!(
        s.verify(&creds, "INVITE", b"", Secret::Password("pw"), T0 + 1000),
        Err(AuthError::ForeignNonce)
    );
    let mut ch = s.challenge(T0, false);
    ch.realm = "elsewhere".into();
    assert_eq!(
        s.verify(
            &client_answer(&ch, "pw"),
            "INVITE",
            b"",
            Secret::Password("pw"),
            T0
        ),
        Err(AuthError::RealmMismatch)
    );
    let mut ch = s.challenge(T0, false);
    ch.algorithm = Algorithm::Md5;
    assert_eq!(
        s.verify(
            &client_answer(&ch, "pw"),
            "INVITE",
            b"",
            Secret::Password("pw"),
            T0
        ),
        Err(AuthError::AlgorithmMismatch)
    );
}

#[test]
fn credentials_missing_fields_are_typed_errors() {
    assert_eq!(
        Credentials::parse(r#"Digest username="a", realm="r", nonce="n", uri="u""#),
        Err(AuthError::MissingParam("response"))
    );
    assert_eq!(
        Credentials::parse(
            r#"Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, nc=00000001"#
        ),
        Err(AuthError::MissingParam("cnonce"))
    );
    assert_eq!(
        Credentials::parse(
            r#"Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth, nc=1, cnonce="c""#
        ),
        Err(AuthError::BadNonceCount)
    );
}

/// The SIP message parser hands headers over already split into scheme and
/// unquoted `(name, value)` pairs; building from those gives the same result
/// as parsing the raw value.
#[test]
fn from_split_params_equals_parsing_the_raw_value() {
    let raw = r#"Digest realm="sip.example.dk", nonce="5f2a1c3b4d", algorithm=SHA-256, qop="auth""#;
    let split = [
        ("realm", "sip.example.dk"),
        ("nonce", "5f2a1c3b4d"),
        ("algorithm", "SHA-256"),
        ("qop", "auth"),
    ];
    assert_eq!(
        Challenge::from_params("Digest", split),
        Challenge::parse(raw)
    );
    assert_eq!(
        Challenge::from_params("Basic", split),
        Err(AuthError::NotDigest)
    );
    let reg = Request {
        method: "REGISTER",
        uri: "sip:sip.example.dk",
        body: b"",
    };
    let c = respond(
        &Challenge::parse(raw).unwrap(),
        &reg,
        "ivr-trunk",
        "s3cret!",
        "0a1b2c3d",
        2,
    )
    .unwrap();
    let pairs = [
        ("username", c.username.clone()),
        ("realm", c.realm.clone()),
        ("nonce", c.nonce.clone()),
        ("uri", c.uri.clone()),
        ("response", c.response.clone()),
        ("algorithm", "SHA-256".to_owned()),
        ("cnonce", "0a1b2c3d".to_owned()),
        ("qop", "auth".to_owned()),
        ("nc", "00000002".to_owned()),
    ];
    assert_eq!(Credentials::from_params("Digest", pairs), Ok(c));
}
