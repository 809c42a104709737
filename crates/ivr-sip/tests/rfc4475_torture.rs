//! RFC 4475 torture messages: each file is one test, with the expectation the
//! RFC states for it (sec. 3.1.1 valid, 3.1.2 invalid, 3.2 transaction layer,
//! 3.3 application layer, 3.4 RFC 2543 compatibility).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use ivr_sip::msg::{HeaderName, Message, ParseError};
use ivr_sip::policy::{
    bad_request_for_unframed, check_request, check_response, RejectReason, ResponseDrop, UasPolicy,
};

fn load(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/vectors/rfc4475/{name}.dat",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses, checks that print -> parse gives the same message, returns it.
fn parse_round_trip(name: &str) -> Message {
    let bytes = load(name);
    let m = Message::parse_datagram(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let printed = m.to_bytes();
    let again = Message::parse_datagram(&printed).unwrap_or_else(|e| panic!("{name} reprint: {e}"));
    assert_eq!(m, again, "{name}: round trip changed the message");
    m
}

/// The UAS verdict: `None` = accepted for processing, `Some(code)` = rejected.
fn uas_verdict(m: &Message) -> Option<u16> {
    match m {
        Message::Request(r) => check_request(r, &UasPolicy::default())
            .err()
            .map(|r| r.status),
        Message::Response(_) => panic!("expected a request"),
    }
}

fn valid_request(name: &str, expected: Option<u16>) -> Message {
    let m = parse_round_trip(name);
    assert_eq!(uas_verdict(&m), expected, "{name}");
    m
}

fn rejected_400(name: &str) {
    let m = Message::parse_datagram(&load(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(uas_verdict(&m), Some(400), "{name}");
}

fn unparseable(name: &str, err: ParseError) {
    assert_eq!(Message::parse_datagram(&load(name)), Err(err), "{name}");
}

/// A malformed request line still lets a 400 be formed (RFC 4475 sec.
/// 3.1.2: "respond with 400 if a response can be formed"): it carries the
/// request's Via, From, To (with our tag), Call-ID and CSeq, and the
/// endpoint sends it to the request's source.
fn answered_400_from_its_headers(name: &str) {
    let bytes = load(name);
    let r = bad_request_for_unframed(&bytes, "t").unwrap_or_else(|| panic!("{name}: no 400"));
    assert_eq!(r.status, 400, "{name}");
    let text = String::from_utf8(bytes.clone()).unwrap();
    let call_id = text
        .lines()
        .find_map(|l| l.strip_prefix("Call-ID: "))
        .unwrap_or_else(|| panic!("{name} has a Call-ID"));
    assert_eq!(r.headers.call_id().unwrap(), call_id.trim(), "{name}");
    let mut ep = ivr_sip::Endpoint::new(ivr_sip::EndpointConfig::new(
        "192.0.2.1:5060".parse().unwrap(),
    ));
    let src: std::net::SocketAddr = "192.0.2.77:5060".parse().unwrap();
    ep.handle_datagram(src, &bytes, std::time::Instant::now());
    let t = ep
        .poll_transmit()
        .unwrap_or_else(|| panic!("{name}: nothing sent"));
    assert_eq!(t.dest.ip(), src.ip(), "{name}");
    assert!(t.bytes.starts_with(b"SIP/2.0 400 "), "{name}");
}

// ---- 3.1.1 valid messages ----

#[test]
fn wsinv_whitespace_folding_and_compact_forms() {
    let m = valid_request("wsinv", None);
    let h = m.headers();
    assert_eq!(h.to().unwrap().tag(), Some("1918181833n"));
    assert_eq!(
        h.from().unwrap().display_name().unwrap(),
        "J Rosenberg \\\""
    );
    assert_eq!(h.from().unwrap().tag(), Some("98asjd8"));
    assert_eq!(h.max_forwards().unwrap(), Some(68));
    assert_eq!(h.cseq().unwrap().seq, 9);
    let vias = h.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    let c = h.contact().unwrap().unwrap();
    assert_eq!(c.params.get("q"), Some(Some("0.33")));
    assert_eq!(h.get(&HeaderName::Subject), Some(""));
    assert_eq!(
        h.get(&HeaderName::Other("NewFangledHeader".into())),
        Some("newfangled value continued newfangled value")
    );
}

#[test]
fn intmeth_unusual_method_and_tokens_get_501() {
    let m = valid_request("intmeth", Some(501));
    let Message::Request(r) = &m else { panic!() };
    assert_eq!(
        r.method.as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    assert!(r.uri.as_sip().unwrap().password.is_some());
    assert_eq!(m.headers().from().unwrap().tag(), Some("_token~1'+`*%!-."));
}

#[test]
fn esc01_escaped_uris() {
    let m = valid_request("esc01", None);
    let Message::Request(r) = &m else { panic!() };
    assert_eq!(
        r.uri.as_sip().unwrap().user_unescaped().unwrap(),
        b"sips:user@example.com"
    );
    let to = m.headers().to().unwrap();
    assert_eq!(to.uri.as_sip().unwrap().user_unescaped().unwrap(), b"user");
}

#[test]
fn escnull_escaped_nul_in_user() {
    let m = valid_request("escnull", Some(405));
    let contacts = m.headers().contacts().unwrap().unwrap();
    assert_eq!(contacts.len(), 2);
    assert_eq!(
        contacts[1].uri.as_sip().unwrap().user_unescaped().unwrap(),
        vec![0, 0]
    );
}

#[test]
fn esc02_percent_in_method_is_not_an_escape() {
    let m = valid_request("esc02", Some(501));
    let Message::Request(r) = &m else { panic!() };
    assert_eq!(r.method.as_str(), "RE%47IST%45R");
    assert_eq!(m.headers().contacts().unwrap().unwrap().len(), 2);
    assert!(m
        .headers()
        .get(&HeaderName::Other("C%6Fntact".into()))
        .is_some());
}

#[test]
fn lwsdisp_no_space_before_angle() {
    let m = valid_request("lwsdisp", None);
    assert_eq!(
        m.headers().from().unwrap().display.as_deref(),
        Some("caller")
    );
}

#[test]
fn longreq_long_values() {
    let m = valid_request("longreq", None);
    assert!(m.headers().to().unwrap().params.0.is_empty());
    assert!(m.headers().vias().unwrap().len() > 1);
}

#[test]
fn dblreq_only_first_message_of_datagram() {
    let m = valid_request("dblreq", Some(405));
    let Message::Request(r) = &m else { panic!() };
    assert_eq!(r.method, ivr_sip::msg::Method::Register);
    assert!(r.body.is_empty());
}

#[test]
fn semiuri_semicolons_in_user_part() {
    let m = valid_request("semiuri", None);
    let Message::Request(r) = &m else { panic!() };
    assert_eq!(
        r.uri.as_sip().unwrap().user.as_deref(),
        Some("user;par=u%40example.net")
    );
    assert_eq!(m.headers().accept().unwrap().unwrap().len(), 6);
}

#[test]
fn transports_unknown_via_transport() {
    let m = valid_request("transports", None);
    let t: Vec<String> = m
        .headers()
        .vias()
        .unwrap()
        .into_iter()
        .map(|v| v.transport)
        .collect();
    assert_eq!(t, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

#[test]
fn mpart01_multipart_binary_body() {
    let m = valid_request("mpart01", Some(405));
    assert_eq!(m.body().len(), 553);
    assert!(m
        .headers()
        .content_type()
        .unwrap()
        .unwrap()
        .is("multipart", "mixed"));
}

#[test]
fn unreason_utf8_reason_phrase() {
    let m = parse_round_trip("unreason");
    let Message::Response(r) = &m else { panic!() };
    assert_eq!(r.status, 200);
    assert!(r.reason.contains("простое"));
    assert_eq!(check_response(r), Ok(()));
}

#[test]
fn noreason_empty_reason_phrase() {
    let m = parse_round_trip("noreason");
    let Message::Response(r) = &m else { panic!() };
    assert_eq!((r.status, r.reason.as_str()), (100, ""));
    assert_eq!(check_response(r), Ok(()));
}

// ---- 3.1.2 invalid messages ----

#[test]
fn badinv01_empty_header_params_rejected() {
    rejected_400("badinv01");
}

#[test]
fn clerr_content_length_beyond_datagram_answered_400() {
    let bytes = load("clerr");
    unparseable("clerr", ParseError::ContentLengthExceedsDatagram);
    assert_eq!(bad_request_for_unframed(&bytes, "t").unwrap().status, 400);
}

#[test]
fn ncl_negative_content_length_answered_400() {
    let bytes = load("ncl");
    unparseable("ncl", ParseError::InvalidContentLength);
    assert_eq!(bad_request_for_unframed(&bytes, "t").unwrap().status, 400);
}

#[test]
fn scalar02_overlarge_request_scalars_rejected() {
    rejected_400("scalar02");
}

#[test]
fn scalarlg_overlarge_response_scalars_dropped() {
    let m = Message::parse_datagram(&load("scalarlg")).unwrap();
    let Message::Response(r) = &m else { panic!() };
    assert!(matches!(check_response(r), Err(ResponseDrop::Malformed(_))));
}

#[test]
fn quotbal_unterminated_quote_rejected() {
    rejected_400("quotbal");
}

#[test]
fn ltgtruri_angle_brackets_in_request_uri_gets_400() {
    unparseable("ltgtruri", ParseError::InvalidUri);
    answered_400_from_its_headers("ltgtruri");
}

#[test]
fn lwsruri_space_in_request_uri_gets_400() {
    unparseable("lwsruri", ParseError::InvalidStartLine);
    answered_400_from_its_headers("lwsruri");
}

#[test]
fn lwsstart_multiple_spaces_in_request_line_gets_400() {
    unparseable("lwsstart", ParseError::InvalidStartLine);
    answered_400_from_its_headers("lwsstart");
}

#[test]
fn trws_trailing_space_after_version_gets_400() {
    unparseable("trws", ParseError::InvalidStartLine);
    answered_400_from_its_headers("trws");
}

#[test]
fn escruri_headers_in_request_uri_rejected() {
    let m = Message::parse_datagram(&load("escruri")).unwrap();
    let Message::Request(r) = &m else { panic!() };
    let rej = check_request(r, &UasPolicy::default()).unwrap_err();
    assert_eq!(
        (rej.status, rej.reason),
        (400, RejectReason::HeadersInRequestUri)
    );
}

#[test]
fn baddate_non_gmt_date_rejected() {
    let m = Message::parse_datagram(&load("baddate")).unwrap();
    let Message::Request(r) = &m else { panic!() };
    assert_eq!(
        check_request(r, &UasPolicy::default()).unwrap_err().reason,
        RejectReason::BadDate
    );
}

#[test]
fn regbadct_unbracketed_contact_with_headers_rejected() {
    rejected_400("regbadct");
}

#[test]
fn badaspec_spaces_inside_angle_brackets_rejected() {
    rejected_400("badaspec");
}

#[test]
fn baddn_unquoted_display_name_with_comma_rejected() {
    rejected_400("baddn");
}

#[test]
fn badvers_sip_7_gets_505() {
    let m = Message::parse_datagram(&load("badvers")).unwrap();
    assert_eq!(uas_verdict(&m), Some(505));
}

#[test]
fn mismatch01_cseq_method_mismatch_rejected() {
    rejected_400("mismatch01");
}

#[test]
fn mismatch02_unknown_method_cseq_mismatch_rejected() {
    rejected_400("mismatch02");
}

#[test]
fn bigcode_status_code_out_of_range() {
    unparseable("bigcode", ParseError::InvalidStatusCode);
}

// ---- 3.2 transaction layer ----

#[test]
fn badbranch_magic_cookie_only_branch_is_accepted() {
    let m = valid_request("badbranch", None);
    let via = m.headers().top_via().unwrap();
    assert_eq!(via.branch(), Some("z9hG4bK"));
    assert!(via.is_rfc3261_branch());
}

// ---- 3.3 application layer ----

#[test]
fn insuf_missing_mandatory_headers_400() {
    let m = valid_request("insuf", Some(400));
    let Message::Request(r) = &m else { panic!() };
    let rej = check_request(r, &UasPolicy::default()).unwrap_err();
    assert!(matches!(
        rej.reason,
        RejectReason::Malformed(ParseError::MissingHeader(_))
    ));
}

#[test]
fn unkscm_unknown_request_uri_scheme_416() {
    valid_request("unkscm", Some(416));
}

#[test]
fn novelsc_novel_request_uri_scheme_416() {
    valid_request("novelsc", Some(416));
}

#[test]
fn unksm2_register_with_non_sip_to_416() {
    let m = valid_request("unksm2", Some(416));
    assert!(!m.headers().to().unwrap().uri.is_known_scheme());
}

#[test]
fn bext01_unknown_require_gets_420_with_unsupported() {
    let m = valid_request("bext01", Some(420));
    let Message::Request(r) = &m else { panic!() };
    let rej = check_request(r, &UasPolicy::default()).unwrap_err();
    assert_eq!(
        rej.headers,
        vec![(
            HeaderName::Unsupported,
            "nothingSupportsThis, nothingSupportsThisEither".into()
        )]
    );
}

#[test]
fn invut_unknown_content_type_gets_415_with_accept() {
    let m = valid_request("invut", Some(415));
    let Message::Request(r) = &m else { panic!() };
    let rej = check_request(r, &UasPolicy::default()).unwrap_err();
    assert!(rej
        .headers
        .iter()
        .any(|(n, v)| *n == HeaderName::Accept && v.contains("application/sdp")));
}

#[test]
fn regaut01_unknown_auth_scheme_parses_and_register_is_not_served() {
    // We are not a registrar: REGISTER is answered 405 with Allow. The
    // unknown scheme parses as raw credentials so an authenticating element
    // would treat them as absent and challenge (RFC 3261 sec. 22.1).
    let m = valid_request("regaut01", Some(405));
    let c = m.headers().challenges(&HeaderName::Authorization).unwrap();
    assert_eq!(c[0].scheme, "NoOneKnowsThisScheme");
    assert_eq!(c[0].param("opaque-data"), Some("here"));
}

#[test]
fn multi01_repeated_single_value_headers_400() {
    let m = valid_request("multi01", Some(400));
    let Message::Request(r) = &m else { panic!() };
    let rej = check_request(r, &UasPolicy::default()).unwrap_err();
    assert!(matches!(
        rej.reason,
        RejectReason::Malformed(ParseError::DuplicateHeader(_))
    ));
}

#[test]
fn mcl01_conflicting_content_lengths_400() {
    let bytes = load("mcl01");
    unparseable("mcl01", ParseError::ConflictingContentLength);
    assert_eq!(bad_request_for_unframed(&bytes, "t").unwrap().status, 400);
}

#[test]
fn bcast_response_with_two_vias_is_dropped_by_uac() {
    let m = parse_round_trip("bcast");
    let Message::Response(r) = &m else { panic!() };
    assert_eq!(check_response(r), Err(ResponseDrop::MultipleVia));
}

#[test]
fn zeromf_max_forwards_zero_is_processed_by_endpoint() {
    let m = valid_request("zeromf", None);
    assert_eq!(m.headers().max_forwards().unwrap(), Some(0));
}

#[test]
fn cparam01_unbracketed_contact_param_is_header_param() {
    let m = valid_request("cparam01", Some(405));
    let c = m.headers().contact().unwrap().unwrap();
    assert!(c.params.contains("unknownparam"));
    assert!(c.uri.as_sip().unwrap().params.0.is_empty());
}

#[test]
fn cparam02_bracketed_contact_param_is_uri_param() {
    let m = valid_request("cparam02", Some(405));
    let c = m.headers().contact().unwrap().unwrap();
    assert!(c.params.0.is_empty());
    assert!(c.uri.as_sip().unwrap().params.contains("unknownparam"));
}

#[test]
fn regescrt_escaped_headers_in_contact_uri() {
    let m = valid_request("regescrt", Some(405));
    let c = m.headers().contact().unwrap().unwrap();
    assert_eq!(
        c.uri.as_sip().unwrap().headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E")
    );
}

#[test]
fn sdp01_accept_without_sdp_gets_406() {
    valid_request("sdp01", Some(406));
}

// ---- 3.4 RFC 2543 compatibility ----

#[test]
fn inv2543_rfc2543_invite_without_branch_is_accepted() {
    let m = valid_request("inv2543", None);
    let via = m.headers().top_via().unwrap();
    assert_eq!(via.branch(), None);
    assert!(!m.body().is_empty());
}

#[test]
fn every_vector_file_has_a_test() {
    let dir = format!("{}/tests/vectors/rfc4475", env!("CARGO_MANIFEST_DIR"));
    let n = std::fs::read_dir(dir).unwrap().count();
    assert_eq!(n, 49);
}
