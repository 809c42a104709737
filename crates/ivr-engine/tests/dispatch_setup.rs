//! The dispatcher over real loopback SIP: one call's set-up is held (a gate
//! in a stand-in [`CallSetup`]) and the dispatcher keeps answering other
//! calls and keeps the held call's events for it, in order. The stand-in
//! answers like `call::accept` does (180, 200 with SDP, a task reading the
//! call's inputs) without media, so no models or RTP are involved; the
//! dispatcher, the SIP driver and the endpoints are the real ones.
#![allow(clippy::unwrap_used)] // reason: test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ivr_engine::call::{Accepted, CallInput, Incoming, Refused, CALL_INPUT_QUEUE};
use ivr_engine::dispatch::{self, CallSetup, Dispatcher, SetupFuture};
use ivr_engine::metrics::Metrics;
use ivr_engine::sip::{AnswerSdp, FixedPcmaAnswer, SipHandle, SipListenConfig, SipService};
use ivr_flow::FlowStore;
use ivr_sip::endpoint::sip_uri_for;
use ivr_sip::{CallHandle, EndReason, EndpointConfig, Event, OutgoingCall, Transport};
use tokio::sync::{mpsc, oneshot};

const WAIT: Duration = Duration::from_secs(10);

/// Where the held set-up stops.
#[derive(Clone, Copy)]
enum HoldAt {
    /// Before 180/200: the caller hears nothing yet.
    BeforeAnswer,
    /// After 200: the caller's ACK (and BYE) arrive while the set-up still runs.
    AfterAnswer,
}

struct Gate {
    at: HoldAt,
    entered: oneshot::Sender<CallHandle>,
    release: oneshot::Receiver<()>,
}

/// Answers every call; the first one's set-up waits at the gate.
struct GatedSetup {
    sip: SipHandle,
    gate: Mutex<Option<Gate>>,
    /// What each call's task received, in order.
    seen: mpsc::UnboundedSender<(CallHandle, CallInput)>,
}

impl CallSetup for GatedSetup {
    fn accept(&self, inc: Incoming) -> SetupFuture {
        let gate = self.gate.lock().unwrap().take();
        let sip = self.sip.clone();
        let seen = self.seen.clone();
        Box::pin(async move {
            let call = inc.handle;
            let hold = |g: Option<Gate>, at: fn(HoldAt) -> bool| async move {
                match g {
                    Some(g) if at(g.at) => {
                        let _ = g.entered.send(call);
                        let _ = g.release.await;
                        None
                    }
                    other => other,
                }
            };
            let gate = hold(gate, |a| matches!(a, HoldAt::BeforeAnswer)).await;
            let mut sdp = FixedPcmaAnswer {
                ip: "127.0.0.1".parse().unwrap(),
                port: 40_000,
            };
            let body = sdp.answer(inc.offer.as_deref()).ok_or(Refused(488))?;
            sip.ringing(call).await.map_err(|_| Refused(500))?;
            sip.answer(call, body).await.map_err(|_| Refused(500))?;
            hold(gate, |a| matches!(a, HoldAt::AfterAnswer)).await;
            let (inputs, mut rx) = mpsc::channel(CALL_INPUT_QUEUE);
            let task = tokio::spawn(async move {
                while let Some(i) = rx.recv().await {
                    let last = matches!(i, CallInput::Ended(_) | CallInput::Terminate);
                    let _ = seen.send((call, i));
                    if last {
                        break;
                    }
                }
            });
            Ok(Accepted { inputs, task })
        })
    }
}

struct Rig {
    caller: SipService,
    caller_events: mpsc::Receiver<Event>,
    bot_addr: SocketAddr,
    number: String,
    draining: Arc<AtomicBool>,
    release: Option<oneshot::Sender<()>>,
    entered: oneshot::Receiver<CallHandle>,
    seen: mpsc::UnboundedReceiver<(CallHandle, CallInput)>,
    _bot: SipService,
    _dispatch: dispatch::Dispatch,
}

async fn rig(at: HoldAt) -> Rig {
    let flows_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let (flows, _) = FlowStore::load(flows_dir).expect("shipped flows load");
    let number = flows.snapshot().tenants[0].number.clone();
    let listen = SipListenConfig {
        udp: vec!["127.0.0.1:0".parse().unwrap()],
        tcp: vec![],
        advertised: None,
        ..Default::default()
    };
    let (bot, bot_events) = SipService::start(listen.clone(), EndpointConfig::new)
        .await
        .unwrap();
    let (caller, caller_events) = SipService::start(listen, EndpointConfig::new)
        .await
        .unwrap();
    let (entered_tx, entered) = oneshot::channel();
    let (release, release_rx) = oneshot::channel();
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let draining = Arc::new(AtomicBool::new(false));
    let d = dispatch::spawn(
        Dispatcher {
            sip: bot.handle(),
            flows: Arc::new(flows),
            setup: Arc::new(GatedSetup {
                sip: bot.handle(),
                gate: Mutex::new(Some(Gate {
                    at,
                    entered: entered_tx,
                    release: release_rx,
                })),
                seen: seen_tx,
            }),
            metrics: Arc::new(Metrics::default()),
            draining: draining.clone(),
            max_setups: 16,
            trunks: Arc::new(Vec::new()),
        },
        bot_events,
    );
    Rig {
        bot_addr: bot.handle().local_addr(Transport::Udp).unwrap(),
        caller,
        caller_events,
        number,
        draining,
        release: Some(release),
        entered,
        seen,
        _bot: bot,
        _dispatch: d,
    }
}

impl Rig {
    async fn place_call(&self) -> CallHandle {
        let me = self.caller.handle().local_addr(Transport::Udp).unwrap();
        self.caller
            .handle()
            .invite(OutgoingCall {
                target: sip_uri_for(Some(&self.number), self.bot_addr),
                dest: self.bot_addr,
                transport: Transport::Udp,
                from: sip_uri_for(Some("4520304050"), me),
                offer: Some(b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n".to_vec()),
                headers: vec![],
            })
            .await
            .expect("INVITE sent")
    }

    /// The caller's next event about `call` that `pick` accepts; panics if
    /// `forbidden` is answered first.
    async fn caller_event(
        &mut self,
        call: CallHandle,
        forbidden: Option<CallHandle>,
        pick: impl Fn(&Event) -> bool,
    ) -> Event {
        tokio::time::timeout(WAIT, async {
            loop {
                let e = self.caller_events.recv().await.expect("caller events");
                if let (Some(f), Event::CallAnswered { call: c, .. }) = (forbidden, &e) {
                    assert_ne!(
                        *c, f,
                        "the held call was answered before its set-up was released"
                    );
                }
                if event_call(&e) == Some(call) && pick(&e) {
                    return e;
                }
            }
        })
        .await
        .expect("bounded wait for a caller event expired")
    }

    /// Inputs the bot's call tasks received until `call`'s task ended.
    async fn inputs_until_end(&mut self, call: CallHandle) -> Vec<String> {
        tokio::time::timeout(WAIT, async {
            let mut got = Vec::new();
            loop {
                let (c, i) = self.seen.recv().await.expect("call inputs");
                if c != call {
                    continue;
                }
                let last = matches!(i, CallInput::Ended(_) | CallInput::Terminate);
                got.push(describe(&i));
                if last {
                    return got;
                }
            }
        })
        .await
        .expect("bounded wait for the call's inputs expired")
    }
}

fn event_call(e: &Event) -> Option<CallHandle> {
    match e {
        Event::CallAnswered { call, .. }
        | Event::CallFailed { call, .. }
        | Event::CallEnded { call, .. }
        | Event::CallProgress { call, .. } => Some(*call),
        _ => None,
    }
}

fn describe(i: &CallInput) -> String {
    match i {
        CallInput::Confirmed(_) => "confirmed".into(),
        CallInput::Ended(EndReason::RemoteBye) => "ended by caller".into(),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn a_call_held_in_set_up_does_not_keep_another_call_from_being_answered() {
    let mut r = rig(HoldAt::BeforeAnswer).await;
    let held = r.place_call().await;
    let held_on_bot = tokio::time::timeout(WAIT, &mut r.entered)
        .await
        .expect("the first call reached its set-up")
        .unwrap();

    // Placed while the first call's set-up waits: answered with 200 all the same.
    let other = r.place_call().await;
    let answered = r
        .caller_event(other, Some(held), |e| {
            matches!(e, Event::CallAnswered { .. })
        })
        .await;
    assert!(matches!(
        answered,
        Event::CallAnswered {
            answer: Some(_),
            ..
        }
    ));

    // Released, the held call is answered too, and both reach their tasks.
    r.release.take().unwrap().send(()).unwrap();
    r.caller_event(held, None, |e| matches!(e, Event::CallAnswered { .. }))
        .await;
    r.caller.handle().hangup(held).await.unwrap();
    assert_eq!(
        r.inputs_until_end(held_on_bot).await,
        ["confirmed", "ended by caller"]
    );
    r.caller.handle().hangup(other).await.unwrap();
    r.caller_event(other, None, |e| matches!(e, Event::CallEnded { .. }))
        .await;
}

#[tokio::test]
async fn events_for_a_call_still_in_set_up_reach_it_in_order_once_it_is_set_up() {
    let mut r = rig(HoldAt::AfterAnswer).await;
    let held = r.place_call().await;
    let held_on_bot = tokio::time::timeout(WAIT, &mut r.entered)
        .await
        .expect("the first call reached its set-up")
        .unwrap();
    // 200 is out: the caller ACKs, then hangs up, while the bot's set-up still runs.
    r.caller_event(held, None, |e| matches!(e, Event::CallAnswered { .. }))
        .await;
    r.caller.handle().hangup(held).await.unwrap();
    r.caller_event(held, None, |e| matches!(e, Event::CallEnded { .. }))
        .await;
    // The dispatcher takes events in order: once a later call is answered,
    // the held call's ACK and BYE have been through it.
    let other = r.place_call().await;
    r.caller_event(other, None, |e| matches!(e, Event::CallAnswered { .. }))
        .await;

    r.release.take().unwrap().send(()).unwrap();
    assert_eq!(
        r.inputs_until_end(held_on_bot).await,
        ["confirmed", "ended by caller"]
    );
}

#[tokio::test]
async fn while_draining_a_new_call_gets_503() {
    let mut r = rig(HoldAt::BeforeAnswer).await;
    r.draining.store(true, Ordering::Relaxed);
    let call = r.place_call().await;
    let failed = r
        .caller_event(call, None, |e| matches!(e, Event::CallFailed { .. }))
        .await;
    assert!(matches!(failed, Event::CallFailed { status: 503, .. }));
}
