//! Endpoint scenarios on simulated time: two endpoints over a seeded lossy
//! network, or an endpoint against a scripted peer. Each test names the
//! behaviour a caller or a trunk would notice if it broke.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use ivr_sip::endpoint::sip_uri_for;
use ivr_sip::guard::{DigestVerifier, IpNet, TrunkAccess};
use ivr_sip::msg::{Challenge, HeaderName as H, Message, Method, Request, Uri};
use ivr_sip::policy::make_response;
use ivr_sip::{
    CallHandle, DigestClient, EndReason, Event, OutgoingCall, RegistrationConfig, Transport,
};
use support::{addr, config, sdp, Sim};

const A: &str = "10.0.0.1:5060";
const B: &str = "10.0.0.2:5060";
const P: &str = "10.0.0.9:5060";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn outgoing(to: std::net::SocketAddr, from: std::net::SocketAddr) -> OutgoingCall {
    OutgoingCall {
        target: sip_uri_for(Some("bot"), to),
        dest: to,
        transport: Transport::Udp,
        from: sip_uri_for(Some("caller"), from),
        offer: Some(sdp(4000, "sendrecv")),
        headers: vec![],
    }
}

fn find_incoming(sim: &Sim, at: std::net::SocketAddr) -> Option<(CallHandle, Option<Vec<u8>>)> {
    sim.events.iter().find_map(|(_, a, e)| match e {
        Event::IncomingCall { call, offer, .. } if *a == at => Some((*call, offer.clone())),
        _ => None,
    })
}

fn has_event(sim: &Sim, at: std::net::SocketAddr, f: impl Fn(&Event) -> bool) -> bool {
    sim.events.iter().any(|(_, a, e)| *a == at && f(e))
}

/// A and B set up a call: B rings and answers at once.
fn establish(
    sim: &mut Sim,
    a: std::net::SocketAddr,
    b: std::net::SocketAddr,
) -> (CallHandle, CallHandle) {
    let now = sim.now;
    let ca = sim.ep(a).invite(outgoing(b, a), now).unwrap();
    assert!(
        sim.run_until(secs(40.0), |s| find_incoming(s, b).is_some()),
        "INVITE never arrived"
    );
    let (cb, offer) = find_incoming(sim, b).unwrap();
    assert!(offer.unwrap().starts_with(b"v=0"));
    let now = sim.now;
    sim.ep(b).ringing(cb, now).unwrap();
    sim.ep(b).answer(cb, sdp(6000, "sendrecv"), now).unwrap();
    let ok = sim.run_until(secs(64.0), |s| {
        has_event(s, a, |e| matches!(e, Event::CallAnswered { .. }))
            && has_event(s, b, |e| matches!(e, Event::CallConfirmed { .. }))
    });
    assert!(ok, "call not established: {:?}", sim.events);
    (ca, cb)
}

#[test]
fn call_is_answered_and_hung_up_despite_20_percent_packet_loss() {
    for seed in 1..=20u64 {
        let mut sim = Sim::new(seed);
        sim.loss = 0.2;
        let (a, b) = (
            sim.add(config(addr(A), seed)),
            sim.add(config(addr(B), seed + 100)),
        );
        let (ca, _cb) = establish(&mut sim, a, b);
        let now = sim.now;
        sim.ep(a).hangup(ca, now).unwrap();
        let ended = sim.run_until(secs(40.0), |s| {
            has_event(s, b, |e| {
                matches!(
                    e,
                    Event::CallEnded {
                        reason: EndReason::RemoteBye,
                        ..
                    }
                )
            })
        });
        assert!(ended, "seed {seed}: BYE never reached B");
        assert_eq!(sim.ep(b).call_count(), 0);
        assert_eq!(sim.ep(a).call_count(), 0);
    }
}

#[test]
fn invite_retransmits_with_t1_doubling_then_fails_408_at_timer_b() {
    let mut sim = Sim::new(1);
    let a = sim.add(config(addr(A), 1));
    let now = sim.now;
    let call = sim.ep(a).invite(outgoing(addr(P), a), now).unwrap();
    sim.run_for(secs(40.0));
    let times: Vec<u128> = sim
        .sent(a, "INVITE")
        .iter()
        .map(|p| (p.at - sim.t0).as_millis())
        .collect();
    assert_eq!(times, [0, 500, 1500, 3500, 7500, 15500, 31500]);
    let failed: Vec<_> = sim
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, Event::CallFailed { call: c, status: 408 } if *c == call))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].0, secs(32.0));
}

struct NoCreds;
impl DigestClient for NoCreds {
    fn authorize(&mut self, _: &Challenge, _: &Method, _: &str, _: &[u8]) -> Option<String> {
        None
    }
}

fn reg_cfg(registrar: std::net::SocketAddr) -> RegistrationConfig {
    RegistrationConfig {
        registrar,
        transport: Transport::Udp,
        registrar_uri: Uri::parse("sip:10.0.0.9").unwrap(),
        aor: Uri::parse("sip:ivr@trunk.example").unwrap(),
        expires: 120,
        retry_after: Duration::from_secs(60),
    }
}

#[test]
fn register_retransmits_capped_at_t2_and_fails_408_at_timer_f() {
    let mut sim = Sim::new(1);
    let a = sim.add(config(addr(A), 1));
    let now = sim.now;
    sim.ep(a).register(reg_cfg(addr(P)), Box::new(NoCreds), now);
    sim.run_for(secs(33.0));
    let times: Vec<u128> = sim
        .sent(a, "REGISTER")
        .iter()
        .map(|p| (p.at - sim.t0).as_millis())
        .collect();
    assert_eq!(
        times,
        [0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(sim
        .events
        .iter()
        .any(|(t, _, e)| *t == secs(32.0)
            && matches!(e, Event::RegistrationFailed { status: 408, .. })));
}

#[test]
fn cancel_racing_200_is_acked_then_ended_with_bye() {
    let mut sim = Sim::new(3);
    let (a, b) = (sim.add(config(addr(A), 1)), sim.add(config(addr(B), 2)));
    let now = sim.now;
    let ca = sim.ep(a).invite(outgoing(b, a), now).unwrap();
    sim.run_until(secs(5.0), |s| find_incoming(s, b).is_some());
    let (cb, _) = find_incoming(&sim, b).unwrap();
    let now = sim.now;
    sim.ep(b).ringing(cb, now).unwrap();
    sim.run_until(secs(5.0), |s| {
        has_event(s, a, |e| {
            matches!(e, Event::CallProgress { status: 180, .. })
        })
    });
    // Same instant: B answers, A gives up. The CANCEL and the 200 cross on the wire.
    let now = sim.now;
    sim.ep(b).answer(cb, sdp(6000, "sendrecv"), now).unwrap();
    sim.ep(a).hangup(ca, now).unwrap();
    sim.run_for(secs(40.0));
    assert!(has_event(&sim, a, |e| matches!(
        e,
        Event::CallEnded {
            reason: EndReason::LocalHangup,
            ..
        }
    )));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::CallConfirmed { .. }
    )));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::CallEnded {
            reason: EndReason::RemoteBye,
            ..
        }
    )));
    assert_eq!(sim.sent(a, "CANCEL").len(), 1);
    assert!(!sim.sent(a, "ACK").is_empty());
    assert_eq!(sim.sent(a, "BYE").len(), 1);
    // B answered the CANCEL 200 (too late to cancel) and never sent 487.
    assert!(sim.sent(b, "SIP/2.0 487").is_empty());
    assert!(sim
        .sent(b, "SIP/2.0 200")
        .iter()
        .any(|p| p.msg().headers().cseq().unwrap().method == Method::Cancel));
    assert!(
        !has_event(&sim, a, |e| matches!(e, Event::CallAnswered { .. })),
        "app never sees an answer it hung up on"
    );
}

#[test]
fn cancel_before_answer_gets_487_and_the_caller_sees_the_failure() {
    let mut sim = Sim::new(4);
    let (a, b) = (sim.add(config(addr(A), 1)), sim.add(config(addr(B), 2)));
    let now = sim.now;
    let ca = sim.ep(a).invite(outgoing(b, a), now).unwrap();
    sim.run_until(secs(5.0), |s| find_incoming(s, b).is_some());
    let (cb, _) = find_incoming(&sim, b).unwrap();
    let now = sim.now;
    sim.ep(b).ringing(cb, now).unwrap();
    sim.run_until(secs(5.0), |s| {
        has_event(s, a, |e| matches!(e, Event::CallProgress { .. }))
    });
    let now = sim.now;
    sim.ep(a).hangup(ca, now).unwrap();
    sim.run_for(secs(40.0));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::CallEnded {
            reason: EndReason::Cancelled,
            ..
        }
    )));
    assert!(has_event(&sim, a, |e| matches!(
        e,
        Event::CallFailed { status: 487, .. }
    )));
    assert_eq!(
        sim.sent(b, "SIP/2.0 487").len(),
        1,
        "487 sent once and ACKed (no retransmits)"
    );
    assert_eq!(sim.ep(b).call_count(), 0);
}

#[test]
fn lost_acks_make_the_uas_retransmit_200_until_one_arrives() {
    let mut sim = Sim::new(5);
    let mut dropped = 0;
    sim.drop_if = Box::new(move |p| {
        if p.first_line().starts_with("ACK") && dropped < 2 {
            dropped += 1;
            return true;
        }
        false
    });
    let (a, b) = (sim.add(config(addr(A), 1)), sim.add(config(addr(B), 2)));
    establish(&mut sim, a, b);
    let oks: Vec<u128> = sim
        .sent(b, "SIP/2.0 200")
        .iter()
        .filter(|p| p.msg().headers().cseq().unwrap().method == Method::Invite)
        .map(|p| (p.at - sim.t0).as_millis())
        .collect();
    assert_eq!(
        oks.len(),
        3,
        "200 sent, then retransmitted after T1 and 2*T1"
    );
    assert_eq!(oks[1] - oks[0], 500);
    assert_eq!(oks[2] - oks[1], 1000);
    assert_eq!(sim.sent(a, "ACK").len(), 3, "every 200 is ACKed");
}

#[test]
fn ack_never_arriving_ends_the_call_with_bye_after_64_t1() {
    let mut sim = Sim::new(6);
    sim.drop_if = Box::new(|p| p.first_line().starts_with("ACK"));
    let (a, b) = (sim.add(config(addr(A), 1)), sim.add(config(addr(B), 2)));
    let now = sim.now;
    sim.ep(a).invite(outgoing(b, a), now).unwrap();
    sim.run_until(secs(5.0), |s| find_incoming(s, b).is_some());
    let (cb, _) = find_incoming(&sim, b).unwrap();
    let answered_at = sim.now;
    sim.ep(b)
        .answer(cb, sdp(6000, "sendrecv"), answered_at)
        .unwrap();
    sim.run_for(secs(40.0));
    let ended = sim
        .events
        .iter()
        .find(|(_, at, e)| {
            *at == b
                && matches!(
                    e,
                    Event::CallEnded {
                        reason: EndReason::AckTimeout,
                        ..
                    }
                )
        })
        .expect("no AckTimeout");
    assert_eq!(ended.0, (answered_at - sim.t0) + secs(32.0));
    let oks: Vec<u128> = sim
        .sent(b, "SIP/2.0 200")
        .iter()
        .map(|p| (p.at - answered_at).as_millis())
        .collect();
    assert_eq!(
        &oks[..7],
        &[0, 500, 1500, 3500, 7500, 11500, 15500],
        "T1 doubling capped at T2"
    );
    assert_eq!(sim.sent(b, "BYE").len(), 1);
}

// ------------------------------------------------------------ scripted peer

struct Peer {
    me: std::net::SocketAddr,
    bot: std::net::SocketAddr,
    call_id: String,
    cseq: u32,
    bot_tag: Option<String>,
    branch: u32,
}

impl Peer {
    fn new(me: &str, bot: std::net::SocketAddr) -> Peer {
        Peer {
            me: addr(me),
            bot,
            call_id: format!("peer-call@{me}"),
            cseq: 1,
            bot_tag: None,
            branch: 0,
        }
    }

    fn request(&mut self, method: &str, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        self.branch += 1;
        if method != "ACK" {
            self.cseq += 1;
        }
        let to_tag = self
            .bot_tag
            .as_ref()
            .map(|t| format!(";tag={t}"))
            .unwrap_or_default();
        let mut s = format!(
            "{method} sip:bot@{bot} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKpeer{b}\r\nMax-Forwards: 70\r\nFrom: <sip:+4512345678@{me}>;tag=peertag\r\nTo: <sip:bot@{bot}>{to_tag}\r\nCall-ID: {cid}\r\nCSeq: {cseq} {method}\r\nContact: <sip:peer@{me}>\r\n",
            bot = self.bot,
            me = self.me,
            b = self.branch,
            cid = self.call_id,
            cseq = self.cseq,
        );
        for (n, v) in extra {
            s.push_str(&format!("{n}: {v}\r\n"));
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut b = s.into_bytes();
        b.extend_from_slice(body);
        b
    }

    fn send(&mut self, sim: &mut Sim, bytes: Vec<u8>) {
        sim.inject(self.me, self.bot, bytes);
    }

    /// Delivered messages to the peer, parsed, taken from the inbox.
    fn inbox(&mut self, sim: &mut Sim) -> Vec<Message> {
        let me = self.me;
        let (mine, rest): (Vec<_>, Vec<_>) = sim.scripted_inbox.drain(..).partition(|p| p.to == me);
        sim.scripted_inbox = rest;
        mine.iter().map(|p| p.msg()).collect()
    }

    fn respond(&mut self, sim: &mut Sim, req: &Request, status: u16) {
        let r = make_response(req, status, Some("peertag2"));
        sim.inject(self.me, self.bot, r.to_bytes());
    }
}

fn responses(msgs: &[Message]) -> Vec<(u16, Method)> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Response(r) => Some((r.status, r.headers.cseq().unwrap().method)),
            _ => None,
        })
        .collect()
}

/// Scripted peer calls the bot; bot answers; peer ACKs. Returns the bot's call.
fn peer_call(sim: &mut Sim, peer: &mut Peer, bot: std::net::SocketAddr) -> CallHandle {
    let inv = peer.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    peer.send(sim, inv);
    sim.run_until(secs(1.0), |s| find_incoming(s, bot).is_some());
    let (call, _) = find_incoming(sim, bot).expect("no IncomingCall");
    let now = sim.now;
    sim.ep(bot)
        .answer(call, sdp(6000, "sendrecv"), now)
        .unwrap();
    sim.run_for(secs(0.1));
    let got = peer.inbox(sim);
    let ok = got
        .iter()
        .find_map(|m| match m {
            Message::Response(r) if r.status == 200 => Some(r.clone()),
            _ => None,
        })
        .expect("no 200");
    peer.bot_tag = ok.headers.to().unwrap().tag().map(str::to_string);
    let ack = peer.request("ACK", &[], &[]);
    peer.send(sim, ack);
    sim.run_until(secs(1.0), |s| {
        has_event(s, bot, |e| matches!(e, Event::CallConfirmed { .. }))
    });
    call
}

#[test]
fn bye_during_transfer_ends_the_call_and_late_notify_gets_481() {
    let mut sim = Sim::new(7);
    let b = sim.add(config(addr(B), 2));
    let mut peer = Peer::new(P, b);
    let call = peer_call(&mut sim, &mut peer, b);
    let now = sim.now;
    let target = Uri::parse("sip:agent@10.0.0.50").unwrap();
    let uui = "56a390f3d2b7310023a2;encoding=hex;purpose=isdn-uui;content=isdn-uui";
    sim.ep(b)
        .refer(
            call,
            &target,
            vec![
                (H::UserToUser, uui.into()),
                (H::Other("X-Intent".into()), "booking".into()),
            ],
            now,
        )
        .unwrap();
    sim.run_for(secs(0.1));
    let got = peer.inbox(&mut sim);
    let Some(Message::Request(refer)) = got
        .iter()
        .find(|m| matches!(m, Message::Request(r) if r.method == Method::Refer))
    else {
        panic!("no REFER: {got:?}")
    };
    assert_eq!(refer.headers.refer_to().unwrap().uri, target);
    assert!(refer.headers.referred_by().unwrap().is_some());
    assert_eq!(refer.headers.get(&H::UserToUser), Some(uui));
    assert_eq!(
        refer.headers.get(&H::Other("X-Intent".into())),
        Some("booking")
    );
    peer.respond(&mut sim, refer, 202);
    let notify = peer.request(
        "NOTIFY",
        &[
            ("Event", "refer"),
            ("Subscription-State", "active;expires=60"),
            ("Content-Type", "message/sipfrag"),
        ],
        b"SIP/2.0 100 Trying\r\n",
    );
    peer.send(&mut sim, notify);
    sim.run_for(secs(0.1));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::TransferAccepted { .. }
    )));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::TransferProgress { status: 100, .. }
    )));
    let bye = peer.request("BYE", &[], &[]);
    peer.send(&mut sim, bye);
    sim.run_for(secs(0.1));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::CallEnded {
            reason: EndReason::RemoteBye,
            ..
        }
    )));
    let late = peer.request(
        "NOTIFY",
        &[
            ("Event", "refer"),
            ("Subscription-State", "terminated"),
            ("Content-Type", "message/sipfrag"),
        ],
        b"SIP/2.0 200 OK\r\n",
    );
    peer.send(&mut sim, late);
    sim.run_for(secs(0.1));
    let r = responses(&peer.inbox(&mut sim));
    assert!(
        r.contains(&(200, Method::Notify))
            && r.contains(&(200, Method::Bye))
            && r.contains(&(481, Method::Notify)),
        "{r:?}"
    );
}

#[test]
fn transfer_result_follows_notify_sipfrag_and_refer_refusal() {
    let mut sim = Sim::new(8);
    let b = sim.add(config(addr(B), 2));
    let mut peer = Peer::new(P, b);
    let call = peer_call(&mut sim, &mut peer, b);
    let target = Uri::parse("sip:agent@10.0.0.50").unwrap();
    // 1: the peer refuses the REFER.
    let now = sim.now;
    sim.ep(b).refer(call, &target, vec![], now).unwrap();
    sim.run_for(secs(0.1));
    let got = peer.inbox(&mut sim);
    let Some(Message::Request(refer)) = got.first() else {
        panic!()
    };
    peer.respond(&mut sim, refer, 403);
    sim.run_for(secs(0.1));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::TransferResult {
            success: false,
            status: 403,
            ..
        }
    )));
    // 2: accepted, and the target answers.
    let now = sim.now;
    sim.ep(b).refer(call, &target, vec![], now).unwrap();
    sim.run_for(secs(0.1));
    let got = peer.inbox(&mut sim);
    let Some(Message::Request(refer)) = got.iter().find(|m| matches!(m, Message::Request(_)))
    else {
        panic!()
    };
    peer.respond(&mut sim, refer, 202);
    let n = peer.request(
        "NOTIFY",
        &[
            ("Event", "refer"),
            ("Subscription-State", "terminated;reason=noresource"),
            ("Content-Type", "message/sipfrag"),
        ],
        b"SIP/2.0 200 OK\r\n",
    );
    peer.send(&mut sim, n);
    sim.run_for(secs(0.1));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::TransferResult {
            success: true,
            status: 200,
            ..
        }
    )));
}

#[test]
fn reinvite_for_hold_is_answered_by_the_app_and_a_second_one_waits_491() {
    let mut sim = Sim::new(9);
    let b = sim.add(config(addr(B), 2));
    let mut peer = Peer::new(P, b);
    let call = peer_call(&mut sim, &mut peer, b);
    let reinv = peer.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendonly"),
    );
    peer.send(&mut sim, reinv);
    sim.run_for(secs(0.1));
    let offer = sim.events.iter().find_map(|(_, _, e)| match e {
        Event::ReInvite { call: c, offer } if *c == call => offer.clone(),
        _ => None,
    });
    assert!(String::from_utf8(offer.expect("no ReInvite event"))
        .unwrap()
        .contains("a=sendonly"));
    let second = peer.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    peer.send(&mut sim, second);
    sim.run_for(secs(0.1));
    let now = sim.now;
    sim.ep(b)
        .answer_reinvite(call, sdp(6000, "recvonly"), now)
        .unwrap();
    sim.run_for(secs(0.1));
    let got = peer.inbox(&mut sim);
    let r = responses(&got);
    assert!(r.contains(&(491, Method::Invite)), "{r:?}");
    let ok = got.iter().find_map(|m| match m {
        Message::Response(r) if r.status == 200 => Some(r.clone()),
        _ => None,
    });
    assert!(String::from_utf8(ok.expect("no 200").body)
        .unwrap()
        .contains("a=recvonly"));
    peer.cseq -= 1; // ACK the re-INVITE (CSeq of the 200), not the 491'd one
    let ack = peer.request("ACK", &[], &[]);
    peer.send(&mut sim, ack);
    sim.run_for(secs(5.0));
    assert_eq!(sim.ep(b).call_count(), 1, "call survives the re-INVITE");
    assert_eq!(
        sim.events
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::CallConfirmed { .. }))
            .count(),
        2
    );
}

#[test]
fn info_dtmf_relay_becomes_a_dtmf_event() {
    let mut sim = Sim::new(10);
    let b = sim.add(config(addr(B), 2));
    let mut peer = Peer::new(P, b);
    let call = peer_call(&mut sim, &mut peer, b);
    let info = peer.request(
        "INFO",
        &[("Content-Type", "application/dtmf-relay")],
        b"Signal=5\r\nDuration=160\r\n",
    );
    peer.send(&mut sim, info);
    let star = peer.request(
        "INFO",
        &[("Content-Type", "application/dtmf-relay")],
        b"Signal=*\r\nDuration=100\r\n",
    );
    peer.send(&mut sim, star);
    sim.run_for(secs(0.1));
    let digits: Vec<char> = sim
        .events
        .iter()
        .filter_map(|(_, _, e)| match e {
            Event::Dtmf {
                call: c,
                digit,
                duration_ms,
            } if *c == call => {
                assert!(duration_ms.is_some());
                Some(digit.as_char())
            }
            _ => None,
        })
        .collect();
    assert_eq!(digits, ['5', '*']);
    assert_eq!(
        responses(&peer.inbox(&mut sim)),
        [(200, Method::Info), (200, Method::Info)]
    );
}

fn options(from: &str, to: std::net::SocketAddr, n: u32) -> Vec<u8> {
    format!(
        "OPTIONS sip:bot@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKopt{n}\r\nMax-Forwards: 70\r\nFrom: <sip:lb@{from}>;tag=lb{n}\r\nTo: <sip:bot@{to}>\r\nCall-ID: opt{n}@{from}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

#[test]
fn options_probe_is_answered_200_with_allow_accept_supported() {
    let mut sim = Sim::new(11);
    let b = sim.add(config(addr(B), 2));
    sim.inject(addr(P), b, options(P, b, 1));
    sim.run_for(secs(0.1));
    let got: Vec<Message> = sim.scripted_inbox.iter().map(|p| p.msg()).collect();
    let Some(Message::Response(r)) = got.first() else {
        panic!()
    };
    assert_eq!(r.status, 200);
    let allow = r.headers.tokens(&H::Allow).unwrap();
    for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO"] {
        assert!(allow.iter().any(|a| a == m), "{m} missing from Allow");
    }
    assert!(r
        .headers
        .get(&H::Accept)
        .unwrap()
        .contains("application/sdp"));
    assert!(r.headers.get(&H::Supported).is_some());
}

#[test]
fn bye_for_an_unknown_dialog_gets_481() {
    let mut sim = Sim::new(12);
    let b = sim.add(config(addr(B), 2));
    let mut peer = Peer::new(P, b);
    peer.bot_tag = Some("nosuchtag".into());
    let bye = peer.request("BYE", &[], &[]);
    peer.send(&mut sim, bye);
    sim.run_for(secs(0.1));
    assert_eq!(responses(&peer.inbox(&mut sim)), [(481, Method::Bye)]);
}

#[test]
fn only_allowlisted_trunks_may_call_others_get_403() {
    let mut sim = Sim::new(13);
    let mut cfg = config(addr(B), 2);
    cfg.trunks = Some(vec![TrunkAccess {
        name: "puzzel".into(),
        allow: vec!["10.0.0.0/29".parse::<IpNet>().unwrap()],
        ..Default::default()
    }]);
    let b = sim.add(cfg);
    let mut stranger = Peer::new(P, b); // 10.0.0.9 is outside 10.0.0.0/29
    let inv = stranger.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    stranger.send(&mut sim, inv);
    let mut trunk = Peer::new("10.0.0.5:5060", b);
    let inv = trunk.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    trunk.send(&mut sim, inv);
    sim.run_for(secs(0.1));
    assert_eq!(
        responses(&stranger.inbox(&mut sim)),
        [(403, Method::Invite)]
    );
    assert_eq!(responses(&trunk.inbox(&mut sim)), [(100, Method::Invite)]);
    assert_eq!(
        sim.events
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::IncomingCall { .. }))
            .count(),
        1
    );
}

struct TestVerifier;
impl DigestVerifier for TestVerifier {
    fn challenge(&mut self, _: std::time::Instant) -> String {
        "Digest realm=\"ivr\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\"".into()
    }
    fn verify(&mut self, _: &Request, c: &Challenge, _: std::time::Instant) -> bool {
        c.param("username") == Some("trunk") && c.param("nonce") == Some("n1")
    }
}

#[test]
fn unknown_source_is_challenged_and_admitted_with_credentials() {
    let mut sim = Sim::new(14);
    let mut cfg = config(addr(B), 2);
    cfg.trunks = Some(vec![]);
    let b = sim.add(cfg);
    sim.ep(b).set_digest_verifier(Box::new(TestVerifier));
    let mut peer = Peer::new(P, b);
    let inv = peer.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    peer.send(&mut sim, inv);
    sim.run_for(secs(0.1));
    let got = peer.inbox(&mut sim);
    let Some(Message::Response(r)) = got.first() else {
        panic!()
    };
    assert_eq!(r.status, 401);
    assert_eq!(
        r.headers.challenges(&H::WwwAuthenticate).unwrap()[0].param("nonce"),
        Some("n1")
    );
    let auth = "Digest username=\"trunk\", realm=\"ivr\", nonce=\"n1\", uri=\"sip:bot@10.0.0.2:5060\", response=\"x\"";
    let inv = peer.request(
        "INVITE",
        &[("Content-Type", "application/sdp"), ("Authorization", auth)],
        &sdp(4000, "sendrecv"),
    );
    peer.send(&mut sim, inv);
    sim.run_for(secs(0.1));
    assert!(find_incoming(&sim, b).is_some());
}

#[test]
fn a_flood_from_one_source_is_limited_but_its_calls_in_progress_continue() {
    let mut sim = Sim::new(15);
    let b = sim.add(config(addr(B), 2));
    let mut peer = Peer::new(P, b);
    let call = peer_call(&mut sim, &mut peer, b);
    peer.inbox(&mut sim);
    for n in 0..500 {
        sim.inject(addr(P), b, options(P, b, n));
    }
    sim.run_for(secs(0.1));
    let answered = peer.inbox(&mut sim).len();
    assert!(answered < 100, "flood answered {answered} times");
    let info = peer.request(
        "INFO",
        &[("Content-Type", "application/dtmf-relay")],
        b"Signal=1\r\n",
    );
    peer.send(&mut sim, info);
    let bye = peer.request("BYE", &[], &[]);
    peer.send(&mut sim, bye);
    sim.run_for(secs(0.1));
    assert_eq!(
        responses(&peer.inbox(&mut sim)),
        [(200, Method::Info), (200, Method::Bye)]
    );
    assert!(has_event(
        &sim,
        b,
        |e| matches!(e, Event::CallEnded { call: c, .. } if *c == call)
    ));
}

#[test]
fn calls_beyond_the_limit_get_503() {
    let mut sim = Sim::new(16);
    let mut cfg = config(addr(B), 2);
    cfg.max_calls = 1;
    let b = sim.add(cfg);
    let mut p1 = Peer::new(P, b);
    peer_call(&mut sim, &mut p1, b);
    let mut p2 = Peer::new("10.0.0.10:5060", b);
    let inv = p2.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    p2.send(&mut sim, inv);
    sim.run_for(secs(0.1));
    assert_eq!(responses(&p2.inbox(&mut sim)), [(503, Method::Invite)]);
}

#[test]
fn offerless_invite_gets_our_offer_and_the_answer_arrives_in_ack() {
    let mut sim = Sim::new(17);
    let b = sim.add(config(addr(B), 2));
    let mut peer = Peer::new(P, b);
    let inv = peer.request("INVITE", &[], &[]);
    peer.send(&mut sim, inv);
    sim.run_for(secs(0.1));
    let (call, offer) = find_incoming(&sim, b).unwrap();
    assert!(offer.is_none());
    let now = sim.now;
    sim.ep(b).answer(call, sdp(6000, "sendrecv"), now).unwrap();
    sim.run_for(secs(0.1));
    let got = peer.inbox(&mut sim);
    let ok = got.iter().find_map(|m| match m {
        Message::Response(r) if r.status == 200 => Some(r.clone()),
        _ => None,
    });
    peer.bot_tag = ok.unwrap().headers.to().unwrap().tag().map(str::to_string);
    let ack = peer.request(
        "ACK",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    peer.send(&mut sim, ack);
    sim.run_for(secs(0.1));
    let sdp_in_ack = sim.events.iter().find_map(|(_, _, e)| match e {
        Event::CallConfirmed { sdp, .. } => sdp.clone(),
        _ => None,
    });
    assert!(sdp_in_ack.unwrap().starts_with(b"v=0"));
}

/// A digest seam that records the challenge it answered.
struct RecordingClient(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
impl DigestClient for RecordingClient {
    fn authorize(&mut self, c: &Challenge, m: &Method, uri: &str, _: &[u8]) -> Option<String> {
        self.0
            .lock()
            .unwrap()
            .push(format!("{} {} {m} {uri}", c.scheme, c.param("nonce")?));
        Some(format!(
            "Digest username=\"ivr\", nonce=\"{}\", uri=\"{uri}\", response=\"r\"",
            c.param("nonce")?
        ))
    }
}

#[test]
fn register_answers_the_digest_challenge_and_refreshes_before_expiry() {
    let mut sim = Sim::new(18);
    let a = sim.add(config(addr(A), 1));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let now = sim.now;
    sim.ep(a).register(
        reg_cfg(addr(P)),
        Box::new(RecordingClient(seen.clone())),
        now,
    );
    let mut registrar = Peer::new(P, a);
    let mut registers = 0;
    for _round in 0..2 {
        for _ in 0..2 {
            sim.run_until(secs(200.0), |s| !s.scripted_inbox.is_empty());
            let got = registrar.inbox(&mut sim);
            let Some(Message::Request(req)) = got.first() else {
                panic!("{got:?}")
            };
            registers += 1;
            let mut r = make_response(req, 401, Some("reg"));
            if req.headers.get(&H::Authorization).is_some() {
                r = make_response(req, 200, Some("reg"));
                r.headers.0.insert(
                    0,
                    ivr_sip::msg::Header {
                        name: H::Contact,
                        value: "<sip:ivr@10.0.0.1:5060>;expires=60".into(),
                    },
                );
            } else {
                r.headers.0.insert(
                    0,
                    ivr_sip::msg::Header {
                        name: H::WwwAuthenticate,
                        value: "Digest realm=\"trunk\", nonce=\"abc\", algorithm=MD5, qop=\"auth\""
                            .into(),
                    },
                );
            }
            sim.inject(addr(P), a, r.to_bytes());
        }
    }
    sim.run_for(secs(0.1));
    assert_eq!(registers, 4);
    let regs: Vec<Duration> = sim
        .events
        .iter()
        .filter(|(_, _, e)| matches!(e, Event::Registered { expires: 60, .. }))
        .map(|(t, _, _)| *t)
        .collect();
    assert_eq!(regs.len(), 2);
    let gap = regs[1] - regs[0];
    assert!(
        gap >= secs(30.0) && gap < secs(31.0),
        "refresh after half of 60 s, got {gap:?}"
    );
    assert_eq!(seen.lock().unwrap()[0], "Digest abc REGISTER sip:10.0.0.9");
}

#[test]
fn responses_follow_rport_and_received_behind_nat() {
    // RFC 3581: the request comes from a NAT mapping (192.0.2.50:40000) while
    // its Via names a private address. With `rport` the response goes to the
    // mapping; without it, to the source IP and the Via port (RFC 3261 sec. 18.2.2).
    let mut sim = Sim::new(19);
    let b = sim.add(config(addr(B), 2));
    for (via_params, expect_dest, expect_via) in [
        (
            ";rport",
            "192.0.2.50:40000",
            ["received=192.0.2.50", "rport=40000"],
        ),
        (
            "",
            "192.0.2.50:5070",
            ["received=192.0.2.50", "received=192.0.2.50"],
        ),
    ] {
        let req = format!(
            "OPTIONS sip:bot@{b} SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKnat{n}{via_params}\r\nMax-Forwards: 70\r\nFrom: <sip:lb@10.1.1.1>;tag=n\r\nTo: <sip:bot@{b}>\r\nCall-ID: nat{n}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            n = via_params.len()
        );
        sim.inject(addr("192.0.2.50:40000"), b, req.into_bytes());
        sim.run_for(secs(0.1));
        let p = sim.scripted_inbox.pop().expect("no response");
        assert_eq!(p.to, addr(expect_dest));
        let via = p.msg().headers().get(&H::Via).unwrap().to_string();
        assert!(expect_via.iter().all(|v| via.contains(v)), "{via}");
    }
}

#[test]
fn a_request_retransmission_is_absorbed_and_answered_from_the_transaction() {
    let mut sim = Sim::new(20);
    let b = sim.add(config(addr(B), 2));
    for _ in 0..3 {
        sim.inject(addr(P), b, options(P, b, 7));
    }
    sim.run_for(secs(0.1));
    let got: Vec<Message> = sim.scripted_inbox.iter().map(|p| p.msg()).collect();
    assert_eq!(got.len(), 3, "each retransmission gets the stored response");
    assert!(
        got.windows(2).all(|w| w[0] == w[1]),
        "identical responses (same To tag)"
    );
}

#[test]
fn register_follows_423_min_expires_and_unregister_sends_expires_zero() {
    let mut sim = Sim::new(21);
    let a = sim.add(config(addr(A), 1));
    let now = sim.now;
    let reg = sim.ep(a).register(reg_cfg(addr(P)), Box::new(NoCreds), now);
    let mut registrar = Peer::new(P, a);
    let mut next_request = |sim: &mut Sim| -> Request {
        sim.run_until(secs(5.0), |s| !s.scripted_inbox.is_empty());
        match registrar.inbox(sim).into_iter().next() {
            Some(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    };
    let first = next_request(&mut sim);
    assert_eq!(first.headers.expires().unwrap(), Some(120));
    let mut too_brief = make_response(&first, 423, Some("reg"));
    too_brief.headers.0.insert(
        0,
        ivr_sip::msg::Header {
            name: H::Other("min-expires".into()),
            value: "300".into(),
        },
    );
    sim.inject(addr(P), a, too_brief.to_bytes());
    let second = next_request(&mut sim);
    assert_eq!(second.headers.expires().unwrap(), Some(300));
    sim.inject(
        addr(P),
        a,
        make_response(&second, 200, Some("reg")).to_bytes(),
    );
    sim.run_for(secs(0.1));
    assert!(has_event(&sim, a, |e| matches!(
        e,
        Event::Registered { expires: 300, .. }
    )));
    let now = sim.now;
    sim.ep(a).unregister(reg, now);
    let bye = next_request(&mut sim);
    assert_eq!(bye.headers.expires().unwrap(), Some(0));
    sim.inject(addr(P), a, make_response(&bye, 200, Some("reg")).to_bytes());
    let before = sim.sent(a, "REGISTER").len();
    sim.run_for(secs(600.0));
    assert_eq!(
        sim.sent(a, "REGISTER").len(),
        before,
        "no refresh after unregister"
    );
}

#[test]
fn rfc2543_invite_without_branch_or_contact_is_answered_and_acked() {
    // RFC 4475 sec. 3.4 (`inv2543`): no branch cookie, no Contact, no Max-Forwards.
    let mut sim = Sim::new(22);
    let b = sim.add(config(addr(B), 2));
    let body = sdp(4000, "sendrecv");
    let inv = format!(
        "INVITE sip:bot@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {P}\r\nFrom: <sip:old@{P}>\r\nTo: <sip:bot@{b}>\r\nCall-ID: 2543@{P}\r\nCSeq: 56 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut bytes = inv.into_bytes();
    bytes.extend_from_slice(&body);
    sim.inject(addr(P), b, bytes.clone());
    sim.inject(addr(P), b, bytes); // retransmission, matched by the RFC 2543 key
    sim.run_for(secs(0.1));
    assert_eq!(
        sim.events
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::IncomingCall { .. }))
            .count(),
        1
    );
    let (call, _) = find_incoming(&sim, b).unwrap();
    let now = sim.now;
    sim.ep(b).answer(call, sdp(6000, "sendrecv"), now).unwrap();
    sim.run_for(secs(0.1));
    let ok = sim
        .scripted_inbox
        .iter()
        .map(|p| p.msg())
        .find_map(|m| match m {
            Message::Response(r) if r.status == 200 => Some(r),
            _ => None,
        })
        .expect("no 200");
    let tag = ok.headers.to().unwrap().tag().unwrap().to_string();
    let ack = format!(
        "ACK sip:bot@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {P}\r\nFrom: <sip:old@{P}>\r\nTo: <sip:bot@{b}>;tag={tag}\r\nCall-ID: 2543@{P}\r\nCSeq: 56 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    sim.inject(addr(P), b, ack.into_bytes());
    sim.run_for(secs(40.0));
    assert!(has_event(&sim, b, |e| matches!(
        e,
        Event::CallConfirmed { .. }
    )));
    assert!(
        !has_event(&sim, b, |e| matches!(e, Event::CallEnded { .. })),
        "ACK matched: no ACK timeout"
    );
}

#[test]
fn over_tcp_the_200_is_not_retransmitted_but_a_missing_ack_still_ends_the_call() {
    use ivr_sip::Endpoint;
    let t0 = std::time::Instant::now();
    let mut ep = Endpoint::new(config(addr(B), 3));
    let mut peer = Peer::new(P, addr(B));
    let inv = peer.request(
        "INVITE",
        &[("Content-Type", "application/sdp")],
        &sdp(4000, "sendrecv"),
    );
    let inv = String::from_utf8(inv)
        .unwrap()
        .replace("SIP/2.0/UDP", "SIP/2.0/TCP");
    ep.handle_message(
        Transport::Tcp,
        addr(P),
        Message::parse(inv.as_bytes()).unwrap(),
        t0,
    );
    let call = match ep.poll_event() {
        Some(Event::IncomingCall { call, .. }) => call,
        other => panic!("{other:?}"),
    };
    ep.answer(call, sdp(6000, "sendrecv"), t0).unwrap();
    let mut oks = 0;
    let mut ended_at = None;
    let mut now = t0;
    for _ in 0..1000 {
        while let Some(t) = ep.poll_transmit() {
            assert_eq!(t.transport, Transport::Tcp);
            if t.bytes.starts_with(b"SIP/2.0 200") {
                oks += 1;
            }
        }
        while let Some(e) = ep.poll_event() {
            if let Event::CallEnded {
                reason: EndReason::AckTimeout,
                ..
            } = e
            {
                ended_at = Some(now - t0);
            }
        }
        match ep.poll_timeout() {
            Some(t) if ended_at.is_none() => {
                now = t;
                ep.handle_timeout(now);
            }
            _ => break,
        }
    }
    assert_eq!(oks, 1, "reliable transport: no 2xx retransmission");
    assert_eq!(ended_at, Some(secs(32.0)));
}
