//! Offer/answer (RFC 3264) on real-world-style offers in `tests/vectors/sdp/`:
//! each file is named for the peer or situation it represents, and each test
//! asserts what a caller would notice (wrong codec = garbled audio, wrong
//! address = silence, wrong direction = one-way audio, no 488 = hung call).
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;

use ivr_sip::sdp::{
    accept_answer, answer, answer_reoffer, offer, Codec, CodecPreference, Direction, LocalMedia,
    LocalSession, Negotiated, SdpConfig, SdpError, SessionDescription,
};

fn vector(name: &str) -> String {
    let path = format!("{}/tests/vectors/sdp/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse(name: &str) -> SessionDescription {
    SessionDescription::parse(&vector(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn local() -> LocalMedia {
    LocalMedia::new("192.0.2.10".parse().unwrap(), 30000, 1_763_900_000)
}

fn answer_default(name: &str) -> Result<(SessionDescription, Negotiated), SdpError> {
    answer(&parse(name), &local(), &SdpConfig::default())
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Our answer must itself be valid SDP that we (and so the peer) can parse,
/// with the same number of m= lines as the offer (RFC 3264 sec. 6).
fn check_answer_shape(offer: &SessionDescription, ans: &SessionDescription) {
    let text = ans.to_string();
    assert!(
        text.starts_with(
            "v=0\r\no=- 1763900000 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
        ),
        "{text}"
    );
    assert_eq!(SessionDescription::parse(&text).as_ref(), Ok(ans));
    assert_eq!(ans.media.len(), offer.media.len());
}

#[test]
fn puzzel_kamailio_pcma_offer_gets_pcma_with_dtmf() {
    let o = parse("puzzel_kamailio_pcma_offer.sdp");
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    check_answer_shape(&o, &a);
    assert_eq!(
        (n.codec, n.payload_type, n.clock_rate),
        (Codec::Pcma, 8, 8000)
    );
    assert_eq!(n.remote_rtp, addr("203.0.113.40:35000"));
    assert_eq!(n.remote_rtcp, addr("203.0.113.40:35001"));
    let te = n.telephone_event.unwrap();
    assert_eq!(te.payload_type, 101);
    assert_eq!(te.events.to_string(), "0-15");
    assert_eq!(n.ptime_ms, 20);
    assert_eq!(n.direction, Direction::SendRecv);
    assert!(!n.remote_hold);
    assert_eq!(
        a.media[0].to_string(),
        "m=audio 30000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    );
}

#[test]
fn baresip_offer_with_many_codecs_picks_pcma_and_8k_telephone_event() {
    let o = parse("baresip_many_codecs_offer.sdp");
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    check_answer_shape(&o, &a);
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
    // 101 is telephone-event/48000 (for opus); only 102 matches PCMA's clock.
    assert_eq!(n.telephone_event.unwrap().payload_type, 102);
    assert_eq!(a.media[0].formats, vec!["8", "102"]);
    // Their order first: G722 is their first codec we support.
    let cfg = SdpConfig {
        preference: CodecPreference::Theirs,
        ..SdpConfig::default()
    };
    let (_, n) = answer(&o, &local(), &cfg).unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.clock_rate),
        (Codec::G722, 9, 8000)
    );
}

#[test]
fn sipp_default_offer_gets_pcmu_without_dtmf() {
    let o = parse("sipp_default_uac_offer.sdp");
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    check_answer_shape(&o, &a);
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
    assert_eq!(n.telephone_event, None);
    assert_eq!(n.remote_rtp, addr("127.0.0.1:6000"));
    assert_eq!(a.media[0].formats, vec!["0"]);
}

#[test]
fn sendonly_hold_is_answered_recvonly() {
    let (a, n) = answer_default("hold_sendonly_offer.sdp").unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(n.remote_hold);
    assert_eq!(a.media[0].direction(), Some(Direction::RecvOnly));
}

#[test]
fn rfc2543_hold_with_c_0000_means_we_stop_sending() {
    let (a, n) = answer_default("hold_rfc2543_c0000_offer.sdp").unwrap();
    assert!(n.remote_hold);
    assert!(!n.direction.sends(), "must not send RTP to 0.0.0.0");
    assert_eq!(n.direction, Direction::RecvOnly);
    assert_eq!(a.media[0].direction(), Some(Direction::RecvOnly));
    // No rtpmap for static 0/8: numbers alone identify them.
    assert_eq!(n.codec, Codec::Pcma);
}

#[test]
fn inactive_is_answered_inactive() {
    let (a, n) = answer_default("inactive_offer.sdp").unwrap();
    assert_eq!(n.direction, Direction::Inactive);
    assert_eq!(a.media[0].direction(), Some(Direction::Inactive));
}

#[test]
fn session_level_direction_applies_to_media() {
    let (_, n) = answer_default("session_level_sendonly_offer.sdp").unwrap();
    assert_eq!(n.direction, Direction::RecvOnly);
}

#[test]
fn we_put_the_peer_on_hold_with_sendonly() {
    let mut l = local();
    l.direction = Direction::SendOnly;
    let (a, n) = answer(
        &parse("puzzel_kamailio_pcma_offer.sdp"),
        &l,
        &SdpConfig::default(),
    )
    .unwrap();
    assert_eq!(n.direction, Direction::SendOnly);
    assert_eq!(a.media[0].direction(), Some(Direction::SendOnly));
}

#[test]
fn g722_only_offer_keeps_the_8000_rtp_clock() {
    let (a, n) = answer_default("g722_only_offer.sdp").unwrap();
    assert_eq!(
        (n.codec, n.payload_type, n.clock_rate),
        (Codec::G722, 9, 8000)
    );
    assert_eq!(n.codec.sample_rate(), 16000);
    assert!(a.to_string().contains("a=rtpmap:9 G722/8000\r\n"));
    assert_eq!(n.telephone_event.unwrap().events.to_string(), "0-16");
}

#[test]
fn g722_declared_at_16000_is_accepted_and_echoed() {
    let (a, n) = answer_default("g722_sloppy_16000_clock_offer.sdp").unwrap();
    assert_eq!(n.codec, Codec::G722);
    assert_eq!(n.clock_rate, 16000);
    assert!(a.to_string().contains("a=rtpmap:9 G722/16000\r\n"));
}

#[test]
fn g722_disabled_in_config_means_488() {
    let cfg = SdpConfig {
        codecs: vec![Codec::Pcma, Codec::Pcmu],
        ..SdpConfig::default()
    };
    let e = answer(&parse("g722_only_offer.sdp"), &local(), &cfg).unwrap_err();
    assert_eq!(e, SdpError::NoCommonCodec);
    assert_eq!(e.sip_status(), 488);
}

#[test]
fn no_common_codec_is_488() {
    let e = answer_default("no_common_codec_opus_gsm_offer.sdp").unwrap_err();
    assert_eq!(e, SdpError::NoCommonCodec);
    assert_eq!(e.sip_status(), 488);
}

#[test]
fn srtp_only_offer_is_488_not_plain_rtp_when_srtp_is_off() {
    let e = answer_default("srtp_only_offer.sdp").unwrap_err();
    assert_eq!(e, SdpError::NoCommonCrypto);
    assert_eq!(e.sip_status(), 488);
}

#[test]
fn offer_without_connection_address_is_refused() {
    assert_eq!(
        answer_default("no_connection_offer.sdp").unwrap_err(),
        SdpError::MissingConnection
    );
}

#[test]
fn ipv6_offer_gives_ipv6_remote_and_rtcp_address() {
    let (_, n) = answer_default("ipv6_pcmu_offer.sdp").unwrap();
    assert_eq!(n.remote_rtp, addr("[2001:db8::10]:49170"));
    assert_eq!(n.remote_rtcp, addr("[2001:db8::11]:49171"));
    assert_eq!(n.codec, Codec::Pcmu);
    // And we answer from an IPv6 address when that is ours.
    let l = LocalMedia::new("2001:db8::1".parse().unwrap(), 30000, 7);
    let (a, _) = answer(&parse("ipv6_pcmu_offer.sdp"), &l, &SdpConfig::default()).unwrap();
    assert!(a.to_string().contains("c=IN IP6 2001:db8::1\r\n"));
    assert!(a.to_string().contains("o=- 7 1 IN IP6 2001:db8::1\r\n"));
}

#[test]
fn dynamic_payload_types_keep_the_offerers_numbers() {
    let (a, n) = answer_default("dynamic_pt_pcma_offer.sdp").unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 100));
    let te = n.telephone_event.unwrap();
    assert_eq!(te.payload_type, 96);
    assert_eq!(te.events.to_string(), "0-11");
    assert_eq!(a.media[0].formats, vec!["100", "96"]);
}

#[test]
fn ptime_is_capped_by_maxptime() {
    let (a, n) = answer_default("ptime30_maxptime_offer.sdp").unwrap();
    assert_eq!(n.ptime_ms, 20);
    // We still tell them what we want to receive.
    assert_eq!(a.media[0].ptime(), Some(20));
}

#[test]
fn only_the_first_acceptable_audio_stream_is_accepted() {
    let o = parse("video_first_then_audio_offer.sdp");
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    check_answer_shape(&o, &a);
    assert_eq!(n.media_index, 2);
    assert_eq!(n.remote_rtp, addr("192.0.2.61:7078"), "media-level c= wins");
    let ports: Vec<u16> = a.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![0, 0, 30000]);
    assert_eq!(
        a.media[0].formats,
        vec!["96"],
        "rejected lines keep their formats"
    );
}

#[test]
fn sloppy_lf_only_ata_offer_is_understood() {
    let o = parse("sloppy_lf_only_ata_offer.sdp");
    assert_eq!(o.timings.len(), 1, "missing t= read as t=0 0");
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    assert_eq!(n.codec, Codec::Pcma);
    assert_eq!(n.ptime_ms, 20);
    assert_eq!(n.remote_rtp, addr("192.0.2.70:16384"));
    assert!(a.to_string().ends_with("a=sendrecv\r\n"));
}

/// RFC 4475 sec. 3.3.16 (sdp01): the body is fine SDP; whatever the SIP layer
/// answers (it asks for `Accept: text/nobodyKnowsThis`), the body must parse,
/// PCMU must be picked, and the video stream rejected.
#[test]
fn rfc4475_sdp01_body() {
    let text = vector("rfc4475_sdp01_body.sdp");
    assert_eq!(text.len(), 150, "Content-Length in the torture message");
    let o = SessionDescription::parse(&text).unwrap();
    assert_eq!(o.origin.username, "mhandley");
    assert_eq!(o.origin.session_version, 7_272_939);
    assert_eq!(o.to_string(), text, "prints back byte for byte");
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
    assert_eq!(n.remote_rtp, addr("192.0.2.5:49217"));
    assert_eq!(a.media[1].to_string(), "m=video 0 RTP/AVP 31\r\n");
}

#[test]
fn our_offer_lists_codecs_in_preference_order() {
    let o = offer(&local(), &SdpConfig::default());
    assert_eq!(
        o.to_string(),
        "v=0\r\no=- 1763900000 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 8 0 9 101\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:9 G722/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    );
}

#[test]
fn offerless_invite_answer_in_ack_is_accepted() {
    let ours = offer(&local(), &SdpConfig::default());
    let n = accept_answer(&ours, &parse("answer_pcmu_from_trunk.sdp")).unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
    assert_eq!(n.telephone_event.unwrap().payload_type, 101);
    assert_eq!(n.remote_rtp, addr("203.0.113.40:36000"));
    assert_eq!(n.direction, Direction::SendRecv);
}

#[test]
fn answer_rejecting_our_audio_is_an_error() {
    let ours = offer(&local(), &SdpConfig::default());
    assert_eq!(
        accept_answer(&ours, &parse("answer_rejecting_audio.sdp")),
        Err(SdpError::AnswerRejected)
    );
}

#[test]
fn answer_with_codec_we_never_offered_is_refused() {
    let cfg = SdpConfig {
        codecs: vec![Codec::Pcma],
        ..SdpConfig::default()
    };
    let ours = offer(&local(), &cfg);
    assert_eq!(
        accept_answer(&ours, &parse("answer_pcmu_from_trunk.sdp")),
        Err(SdpError::NoCommonCodec)
    );
}

#[test]
fn answer_with_wrong_m_line_count_is_refused() {
    let ours = offer(&local(), &SdpConfig::default());
    assert!(matches!(
        accept_answer(&ours, &parse("video_first_then_audio_offer.sdp")),
        Err(SdpError::MediaCountMismatch {
            offer: 1,
            answer: 3
        })
    ));
}

/// Both ends of a call are ours: our answer to our offer must negotiate
/// the same codec and DTMF payload type on both sides.
#[test]
fn our_answer_to_our_offer_agrees_both_ways() {
    let cfg = SdpConfig::default();
    let caller = offer(&local(), &cfg);
    let callee_local = LocalMedia::new("192.0.2.11".parse().unwrap(), 40000, 5);
    let (ans, at_callee) = answer(&caller, &callee_local, &cfg).unwrap();
    let at_caller = accept_answer(&caller, &ans).unwrap();
    assert_eq!(at_caller.codec, at_callee.codec);
    assert_eq!(at_caller.payload_type, at_callee.payload_type);
    assert_eq!(at_caller.telephone_event, at_callee.telephone_event);
    assert_eq!(at_caller.remote_rtp, addr("192.0.2.11:40000"));
    assert_eq!(at_callee.remote_rtp, addr("192.0.2.10:30000"));
}

/// Re-INVITE flow: hold then resume. The codec stays, o= keeps its session
/// id and the version goes up exactly when our answer changes.
#[test]
fn reinvite_hold_resume_bumps_version_and_keeps_codec() {
    let cfg = SdpConfig {
        preference: CodecPreference::Theirs,
        ..SdpConfig::default()
    };
    let mut session = LocalSession::new();
    let initial = parse("baresip_many_codecs_offer.sdp");
    let (a1, n1) = answer(&initial, &local(), &cfg).unwrap();
    let a1 = session.stamp(a1);
    assert_eq!(n1.codec, Codec::G722);

    // Same offer again (session refresh): same answer, same version.
    let (a2, n2) = answer_reoffer(&initial, &local(), &cfg, &n1).unwrap();
    let a2 = session.stamp(a2);
    assert_eq!(a2.origin.session_version, a1.origin.session_version);
    assert_eq!(n2.codec, Codec::G722);

    // Hold: a=sendonly from them, our answer changes to recvonly.
    let hold = vector("baresip_many_codecs_offer.sdp").replace("a=sendrecv", "a=sendonly");
    let hold = SessionDescription::parse(&hold).unwrap();
    let (a3, n3) = answer_reoffer(&hold, &local(), &cfg, &n2).unwrap();
    let a3 = session.stamp(a3);
    assert_eq!(n3.direction, Direction::RecvOnly);
    assert_eq!(a3.origin.session_version, a1.origin.session_version + 1);
    assert_eq!(a3.origin.session_id, a1.origin.session_id);

    // Resume, with PCMA now listed first: the codec must not flip.
    let resume = vector("baresip_many_codecs_offer.sdp")
        .replace("RTP/AVP 96 97 98 9 0 8", "RTP/AVP 8 96 97 98 9 0");
    let resume = SessionDescription::parse(&resume).unwrap();
    let (a4, n4) = answer_reoffer(&resume, &local(), &cfg, &n3).unwrap();
    let a4 = session.stamp(a4);
    assert_eq!(n4.codec, Codec::G722);
    assert_eq!(n4.direction, Direction::SendRecv);
    assert_eq!(a4.origin.session_version, a1.origin.session_version + 2);
}

#[test]
fn telephone_event_can_be_disabled() {
    let cfg = SdpConfig {
        telephone_event: false,
        ..SdpConfig::default()
    };
    let (a, n) = answer(&parse("puzzel_kamailio_pcma_offer.sdp"), &local(), &cfg).unwrap();
    assert_eq!(n.telephone_event, None);
    assert_eq!(a.media[0].formats, vec!["8"]);
    assert!(!offer(&local(), &cfg)
        .to_string()
        .contains("telephone-event"));
}

/// Captured from baresip 1.0.0 (Debian) dialling a loopback listener with
/// opus, G.722, G.711, GSM and L16 loaded: 16 formats, telephone-event on 105.
#[test]
fn captured_baresip_offer_gets_pcma_and_dtmf_on_105() {
    let o = parse("baresip_1_0_captured_offer.sdp");
    assert_eq!(o.media[0].formats.len(), 16);
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    check_answer_shape(&o, &a);
    assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 8));
    assert_eq!(n.telephone_event.unwrap().payload_type, 105);
    assert_eq!(a.media[0].formats, vec!["8", "105"]);
    // Session-level a=tool and media-level a=ssrc/a=minptime are kept raw.
    assert!(o.to_string().contains("a=tool:baresip 1.0.0\r\n"));
    assert!(o.to_string().contains("a=minptime:4\r\n"));
    assert_eq!(o.to_string(), vector("baresip_1_0_captured_offer.sdp"));
}

/// RFC 3264 sec. 5.1: each side receives with the payload numbers of its own
/// description. An answerer that renumbers telephone-event (96 for our 101)
/// sends DTMF to us on 101 and expects ours on 96.
#[test]
fn renumbered_telephone_event_in_answer_splits_send_and_receive_numbers() {
    let ours = offer(&local(), &SdpConfig::default());
    let ans = vector("answer_pcmu_from_trunk.sdp")
        .replace("RTP/AVP 0 101", "RTP/AVP 0 96")
        .replace(":101", ":96");
    let n = accept_answer(&ours, &SessionDescription::parse(&ans).unwrap()).unwrap();
    let te = n.telephone_event.unwrap();
    assert_eq!((te.payload_type, te.recv_payload_type), (96, 101));
    assert_eq!((n.payload_type, n.recv_payload_type), (0, 0));
}

/// When we answer, we keep the offerer's numbers, so both directions match.
#[test]
fn answering_uses_one_number_per_format_both_ways() {
    let (_, n) = answer_default("dynamic_pt_pcma_offer.sdp").unwrap();
    assert_eq!((n.payload_type, n.recv_payload_type), (100, 100));
    let te = n.telephone_event.unwrap();
    assert_eq!((te.payload_type, te.recv_payload_type), (96, 96));
}

/// RFC 8866 sec. 5's example: every optional session field prints back in
/// place; the first of two audio streams is taken, the rest rejected.
#[test]
fn rfc8866_example_round_trips_and_takes_first_audio() {
    let text = vector("rfc8866_sec5_seminar_example.sdp");
    let o = SessionDescription::parse(&text).unwrap();
    assert_eq!(o.to_string(), text);
    assert_eq!(o.info.as_deref(), Some("SDP Offer #1"));
    assert_eq!(o.phones, vec!["+1 617 555-6011"]);
    let (a, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    assert_eq!(n.media_index, 0);
    assert_eq!(
        (n.codec, n.remote_rtp),
        (Codec::Pcmu, addr("198.51.100.1:49170"))
    );
    let ports: Vec<u16> = a.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, vec![30000, 0, 0]);
}

/// RFC 3264 sec. 10.1 uses host names in c=. The sans-IO core does not
/// resolve names: the caller gets a typed error (488 if it does not resolve
/// and retry), never a guess.
#[test]
fn rfc3264_hostname_connection_is_a_typed_error() {
    let o = parse("rfc3264_sec10_1_alice_hostname_offer.sdp");
    let e = answer(&o, &local(), &SdpConfig::default()).unwrap_err();
    assert_eq!(e, SdpError::UnresolvedHost);
    assert_eq!(e.sip_status(), 488);
}

/// RFC 4475 sec. 3.1.2.18 (mismatch02) carries SDP without `s=` and `t=`:
/// tolerated, read as `s=-` and `t=0 0`, and answered.
#[test]
fn rfc4475_mismatch02_body_without_s_and_t_is_tolerated() {
    let o = parse("rfc4475_mismatch02_body_without_s_and_t.sdp");
    assert_eq!(o.session_name, "-");
    assert_eq!((o.timings[0].start, o.timings[0].stop), (0, 0));
    let (_, n) = answer(&o, &local(), &SdpConfig::default()).unwrap();
    assert_eq!(n.codec, Codec::Pcmu);
}

/// RFC 4475 sec. 3.4 (inv2543): an RFC 2543 INVITE's body, PCMU only.
#[test]
fn rfc4475_inv2543_body_is_answered_with_pcmu() {
    let (a, n) = answer_default("rfc4475_inv2543_body.sdp").unwrap();
    assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
    assert_eq!(n.remote_rtp, addr("192.0.2.5:49217"));
    assert_eq!(a.media[0].formats, vec!["0"]);
}
