//! Shared helpers of the benches (writing results as JSON under `target/bench/`).
//!
//! Each bench is declared as a `[[bench]]` (criterion, `harness = false`) or a
//! `[[bin]]` harness in `benches/Cargo.toml`.

pub mod turn_set {
    //! The end-of-turn set (`tests/vectors/turn/`): turns with mid-sentence
    //! pauses in Danish and English through G.711, rendered once into
    //! `target/turn-vectors` by `tests/vectors/turn/generate.py`, for the
    //! `turn_detect` and `turn_answer` harnesses.

    use std::collections::HashMap;
    use std::path::{Path, PathBuf};

    use ivr_core::{Lang, Pcm};

    /// The workspace root.
    pub fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// One rendered turn.
    pub struct TurnFile {
        /// `<turn id>-<speaker variant>`.
        pub id: String,
        /// The language spoken.
        pub lang: Lang,
        /// The kind of question the turn answers (`turns.toml`).
        pub question: String,
        /// The audio at 8 kHz (as the call hears it).
        pub audio8: Vec<i16>,
        /// The same at 16 kHz.
        pub audio16: Vec<i16>,
        /// Where the speech truly ends (ms from the start).
        pub speech_end_ms: u32,
        /// How many mid-sentence pauses it has.
        pub pauses: usize,
    }

    /// Which set of turns: the one the end-of-turn rules were built on, or
    /// the held-out one written without seeing them.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum TurnSet {
        /// `tests/vectors/turn/turns.toml` (72 files).
        Own,
        /// `tests/vectors/turn/heldout_turns.toml` (80 files).
        HeldOut,
    }

    impl TurnSet {
        /// `--set own|heldout`.
        pub fn parse(s: &str) -> Option<Self> {
            match s {
                "own" => Some(Self::Own),
                "heldout" => Some(Self::HeldOut),
                _ => None,
            }
        }

        fn turns(self) -> PathBuf {
            root().join(match self {
                Self::Own => "tests/vectors/turn/turns.toml",
                Self::HeldOut => "tests/vectors/turn/heldout_turns.toml",
            })
        }

        fn rendered(self) -> PathBuf {
            root().join(match self {
                Self::Own => "target/turn-vectors",
                Self::HeldOut => "target/turn-vectors-heldout",
            })
        }
    }

    /// Every rendered turn of the own set (see [`load_set`]).
    pub fn load(who: &str) -> Vec<TurnFile> {
        load_set(who, TurnSet::Own)
    }

    /// Every rendered turn of `set`, sorted by id; renders the set first when
    /// it is missing (exits with a message when that fails). `who` names the
    /// harness in messages.
    pub fn load_set(who: &str, set: TurnSet) -> Vec<TurnFile> {
        let dir = set.rendered();
        if !dir.join("truth.toml").is_file() {
            println!("{who}: rendering the turns (tests/vectors/turn/generate.py, ~2 min)");
            let ok = std::process::Command::new("python3")
                .arg(root().join("tests/vectors/turn/generate.py"))
                .arg(&dir)
                .arg(set.turns())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!(
                    "{who}: generate.py failed (needs python3, piper-tts 1.8, espeak-ng, sox)"
                );
                std::process::exit(2);
            }
        }
        let read = |p: PathBuf| -> toml::Value {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        let turns = read(set.turns());
        let question: HashMap<String, String> = turns["turn"]
            .as_array()
            .expect("turns.toml: [[turn]]")
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().unwrap_or_default().to_string(),
                    t["question"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let truth = read(dir.join("truth.toml"));
        let mut out = Vec::new();
        for (id, t) in truth["file"].as_table().expect("truth.toml: [file]") {
            let wav = dir.join("g711").join(format!("{id}.wav"));
            let mut r =
                hound::WavReader::open(&wav).unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
            let audio8: Vec<i16> = r
                .samples::<i16>()
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("{}: {e}", wav.display()));
            let audio16 = ivr_core::resample::resample(&Pcm::new(8000, audio8.clone()), 16_000)
                .expect("8 -> 16 kHz")
                .samples;
            let base = id.rsplit_once('-').map_or(id.as_str(), |(b, _)| b);
            out.push(TurnFile {
                id: id.clone(),
                lang: t["lang"]
                    .as_str()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or_else(|| panic!("{id}: lang")),
                question: question
                    .get(base)
                    .unwrap_or_else(|| panic!("{id}: no turn {base} in turns.toml"))
                    .clone(),
                audio8,
                audio16,
                speech_end_ms: t["speech_end_ms"].as_integer().unwrap_or(0) as u32,
                pauses: t["pauses_ms"].as_array().map_or(0, Vec::len),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }
}

pub mod uac {
    //! A light SIP caller for load harnesses: the workspace's own SIP stack
    //! on one tokio runtime, one UDP socket per call, INVITE (PCMA and
    //! telephone-event), ACK, BYE. It replaces SIPp where SIPp's one thread
    //! per pcap player would load the box more than the engine under test.
    //! The RTP the caller sends is the harness's (one shared tick for all
    //! calls is cheap; see `crisis.rs`).

    use std::collections::HashMap;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use ivr_engine::sip::{SipHandle, SipListenConfig, SipService};
    use ivr_sip::msg::Uri;
    use ivr_sip::sdp::{self, Codec, LocalMedia, Negotiated, SdpConfig, SessionDescription};
    use ivr_sip::{CallHandle, EndpointConfig, Event, OutgoingCall, Transport};
    use tokio::net::UdpSocket;
    use tokio::sync::mpsc;

    /// SIP events of a caller endpoint, routed to each call (those arriving
    /// before the call registers are kept for it). Used by every harness
    /// that places calls: [`Uac`], the latency harness.
    #[derive(Default)]
    pub struct Router {
        inner: Mutex<Routes>,
    }

    #[derive(Default)]
    struct Routes {
        calls: HashMap<u64, mpsc::UnboundedSender<Event>>,
        early: HashMap<u64, Vec<Event>>,
    }

    impl Router {
        /// Routes the endpoint's `events` from a task (needs a tokio runtime).
        pub fn spawn(mut events: mpsc::Receiver<Event>) -> Arc<Router> {
            let router = Arc::new(Router::default());
            let r = router.clone();
            tokio::spawn(async move {
                while let Some(e) = events.recv().await {
                    let Some(call) = event_call(&e) else { continue };
                    let mut routes = r.routes();
                    match routes.calls.get(&call.0) {
                        Some(tx) => {
                            let _ = tx.send(e);
                        }
                        None => routes.early.entry(call.0).or_default().push(e),
                    }
                }
            });
            router
        }

        fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
            self.inner.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// The events of `call` from now on, with those that came before.
        pub fn register(&self, call: CallHandle) -> mpsc::UnboundedReceiver<Event> {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut r = self.routes();
            for e in r.early.remove(&call.0).unwrap_or_default() {
                let _ = tx.send(e);
            }
            r.calls.insert(call.0, tx);
            rx
        }

        /// Forgets `call`.
        pub fn unregister(&self, call: CallHandle) {
            let mut r = self.routes();
            r.calls.remove(&call.0);
            r.early.remove(&call.0);
        }
    }

    fn event_call(e: &Event) -> Option<CallHandle> {
        match e {
            Event::IncomingCall { call, .. }
            | Event::CallConfirmed { call, .. }
            | Event::CallProgress { call, .. }
            | Event::CallAnswered { call, .. }
            | Event::CallFailed { call, .. }
            | Event::CallEnded { call, .. }
            | Event::ReInvite { call, .. }
            | Event::Dtmf { call, .. }
            | Event::TransferAccepted { call }
            | Event::TransferProgress { call, .. }
            | Event::TransferResult { call, .. } => Some(*call),
            _ => None,
        }
    }

    /// The caller side: one SIP endpoint on a loopback port.
    pub struct Uac {
        sip: SipHandle,
        router: Arc<Router>,
        _service: SipService,
    }

    /// A call the far end answered.
    pub struct Answered {
        /// The dialog.
        pub call: CallHandle,
        /// What offer/answer settled (where to send RTP, payload types).
        pub media: Negotiated,
        /// The call's SIP events from now on.
        pub events: mpsc::UnboundedReceiver<Event>,
    }

    impl Uac {
        /// Starts the endpoint (needs a tokio runtime); `user_agent` names the harness.
        pub async fn start(user_agent: &str) -> Result<Uac, String> {
            let (service, events) = SipService::start(
                SipListenConfig {
                    udp: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)],
                    tcp: vec![],
                    advertised: None,
                    ..Default::default()
                },
                |adv| {
                    let mut c = EndpointConfig::new(adv);
                    c.max_calls = 100_000;
                    c.rate_limit.per_second = 1e6;
                    c.rate_limit.burst = 1e6;
                    c.user_agent = user_agent.into();
                    c
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            Ok(Uac {
                sip: service.handle(),
                router: Router::spawn(events),
                _service: service,
            })
        }

        /// Calls `called` at `engine` from `caller`, offering PCMA and
        /// telephone-event on `rtp`'s port; waits up to `wait` for the answer.
        pub async fn call(
            &self,
            engine: SocketAddr,
            called: &str,
            caller: &str,
            rtp: &UdpSocket,
            wait: Duration,
        ) -> Result<Answered, String> {
            let port = rtp.local_addr().map_err(|e| e.to_string())?.port();
            let cfg = SdpConfig {
                codecs: vec![Codec::Pcma],
                ..SdpConfig::default()
            };
            let offer = sdp::offer(
                &LocalMedia::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port, u64::from(port)),
                &cfg,
            );
            let out = OutgoingCall {
                target: Uri::parse(&format!("sip:{called}@{engine}")).map_err(|e| e.to_string())?,
                dest: engine,
                transport: Transport::Udp,
                from: Uri::parse(&format!("sip:{caller}@127.0.0.1")).map_err(|e| e.to_string())?,
                offer: Some(offer.to_string().into_bytes()),
                headers: Vec::new(),
            };
            let call = self
                .sip
                .invite(out)
                .await
                .map_err(|e| format!("INVITE not sent: {e}"))?;
            let mut events = self.router.register(call);
            let answer = tokio::time::timeout(wait, async {
                while let Some(e) = events.recv().await {
                    match e {
                        Event::CallAnswered { answer, .. } => return Ok(answer),
                        Event::CallFailed { status, .. } => {
                            return Err(format!("call failed {status}"))
                        }
                        Event::CallEnded { reason, .. } => return Err(format!("ended {reason:?}")),
                        _ => {}
                    }
                }
                Err("event channel closed".to_string())
            })
            .await;
            let media = match answer {
                Ok(Ok(Some(body))) => SessionDescription::parse_bytes(&body)
                    .map_err(|e| e.to_string())
                    .and_then(|a| sdp::accept_answer(&offer, &a).map_err(|e| e.to_string())),
                Ok(Ok(None)) => Err("200 without SDP".into()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!("no answer in {} s", wait.as_secs())),
            };
            match media {
                Ok(media) => Ok(Answered {
                    call,
                    media,
                    events,
                }),
                Err(e) => {
                    let _ = self.sip.hangup(call).await;
                    self.router.unregister(call);
                    Err(e)
                }
            }
        }

        /// Sends BYE and waits up to `wait` for the call to end. Returns
        /// whether it ended before (by the engine) or after our BYE.
        pub async fn hangup(&self, a: &mut Answered, wait: Duration) -> bool {
            let ended_before = loop {
                match a.events.try_recv() {
                    Ok(Event::CallEnded { .. }) => break true,
                    Ok(_) => continue,
                    Err(_) => break false,
                }
            };
            if !ended_before {
                let _ = self.sip.hangup(a.call).await;
                let _ = tokio::time::timeout(wait, async {
                    while let Some(e) = a.events.recv().await {
                        if matches!(e, Event::CallEnded { .. }) {
                            return;
                        }
                    }
                })
                .await;
            }
            self.router.unregister(a.call);
            ended_before
        }
    }
}
