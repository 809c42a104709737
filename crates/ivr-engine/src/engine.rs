//! Starting and stopping the engine: flows, database, stand-ins,
//! integrations workers, TTS (static prompts pre-rendered), STT pool, SIP
//! transport, the dispatcher that turns SIP events into per-call tasks
//! ([`crate::dispatch`]), and the HTTP port (`/health`, `/metrics`).
//!
//! Graceful shutdown ([`Running::shutdown`]): new INVITEs get 503 and
//! `/health` answers 503 (so a load balancer stops sending), calls in
//! progress continue until they end or the drain deadline passes, then they
//! are hung up (BYE) and the engine stops.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ivr_core::{FixedClock, SystemClock, WallClock};
use ivr_flow::FlowStore;
use ivr_integrations::standin::frontdesk::FrontdeskStandin;
use ivr_integrations::standin::puzzel::PuzzelStandin;
use ivr_integrations::Integrations;
use ivr_sip::{EndpointConfig, Transport};
use ivr_tts::{TextToSpeech, Tts};
use tokio::sync::watch;

use crate::call::{self, CallShared};
use crate::config::EngineConfig;
use crate::dispatch::{AcceptCalls, Dispatch, Dispatcher};
use crate::metrics::Metrics;
use crate::records::Records;
use crate::services::Services;
use crate::sip::{SipListenConfig, SipService};
use crate::speech::SpeechPool;
use crate::turns::{TurnTiming, TurnTimings};

/// Why the engine could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The flows do not load.
    #[error("flows: {0}")]
    Flows(#[from] ivr_flow::StoreError),
    /// The database cannot be opened or migrated.
    #[error("database: {0}")]
    Db(#[from] ivr_integrations::db::StoreError),
    /// The console's tables cannot be created.
    #[error("console: {0}")]
    Console(#[from] crate::console::ConsoleError),
    /// The call record table cannot be created.
    #[error("call records: {0}")]
    Records(#[from] crate::records::RecordError),
    /// Text to speech cannot start (voices, onnxruntime).
    #[error("text to speech: {0}")]
    Tts(#[from] ivr_tts::TtsError),
    /// The SIP sockets cannot be bound.
    #[error("SIP: {0}")]
    Sip(#[from] crate::sip::SipTransportError),
    /// The TLS certificate, key or roots cannot be used.
    #[error("SIP TLS: {0}")]
    Tls(#[from] crate::sip::TlsError),
    /// An integration's configuration is unusable.
    #[error("integrations: {0}")]
    Integrations(String),
    /// The sentence-embedding model cannot be loaded and
    /// `[understanding] required = true`.
    #[error("understanding: {0}")]
    Understanding(#[from] ivr_embed::LoadError),
    /// A socket (HTTP, stand-in) cannot be bound.
    #[error("cannot bind {what}: {source}")]
    Bind {
        /// Which socket.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running engine.
pub struct Running {
    /// The bound SIP UDP address.
    pub sip_udp: Option<SocketAddr>,
    /// The bound SIP TLS address.
    pub sip_tls: Option<SocketAddr>,
    /// The bound HTTP address.
    pub http: Option<SocketAddr>,
    /// The Frontdesk stand-in, when started in-process.
    pub frontdesk_standin: Option<FrontdeskStandin>,
    /// The Puzzel stand-in, when started in-process.
    pub puzzel_standin: Option<PuzzelStandin>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    turns: TurnTimings,
    state: Arc<State>,
    stop_workers: watch::Sender<bool>,
    integrations: Arc<Integrations>,
    sip: Option<SipService>,
    dispatch: Dispatch,
}

struct State {
    draining: Arc<AtomicBool>,
    stt: SpeechPool,
}

/// The sentence encoder of `[understanding]`: `None` (with an error in the
/// log) when it cannot be loaded and is not `required`.
fn load_encoder(
    cfg: &crate::config::UnderstandingConfig,
) -> Result<Option<Arc<dyn ivr_flow::semantic::SentenceEncoder>>, EngineError> {
    match ivr_embed::E5Encoder::load(&cfg.model) {
        Ok(e) => {
            tracing::info!(
                model = %cfg.model.display(),
                load_ms = e.load_time().as_millis() as u64,
                "sentence encoder loaded: intents are recognised by meaning and words"
            );
            Ok(Some(Arc::new(e)))
        }
        Err(e) if cfg.required => Err(e.into()),
        Err(e) => {
            tracing::error!(
                "{e}; intents are recognised by their words alone (set [understanding] required = true to refuse to start instead)"
            );
            Ok(None)
        }
    }
}

/// Descriptors a call holds (its RTP and RTCP sockets), and those the engine
/// needs besides (SIP, HTTP, database, models, log).
const FDS_PER_CALL: u64 = 2;
const FDS_BESIDES_CALLS: u64 = 256;

/// The open-file limit (soft) from `/proc/self/limits`, if readable.
pub fn open_file_limit() -> Option<u64> {
    std::fs::read_to_string("/proc/self/limits")
        .ok()?
        .lines()
        .find(|l| l.starts_with("Max open files"))?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()
}

/// Warns at start when the process may run out of descriptors below the
/// call limit: calls would then be refused (503, no RTP port) for want of
/// descriptors, not because the limit was reached. systemd's unit sets
/// `LimitNOFILE`; a shell's `ulimit -n` is often 1024.
fn check_descriptor_limit(max_calls: u64) {
    let need = max_calls * FDS_PER_CALL + FDS_BESIDES_CALLS;
    if let Some(limit) = open_file_limit().filter(|l| *l < need) {
        tracing::warn!(
            limit,
            need,
            max_calls,
            "the open-file limit is below what [sip] max_calls needs: calls beyond about {} would be refused; raise it (systemd LimitNOFILE, or ulimit -n)",
            limit.saturating_sub(FDS_BESIDES_CALLS) / FDS_PER_CALL
        );
    }
}

async fn bind_local(what: &'static str) -> Result<tokio::net::TcpListener, EngineError> {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| EngineError::Bind { what, source })
}

/// Starts the engine.
///
/// # Errors
/// [`EngineError`] naming the part that could not start.
pub async fn start(mut cfg: EngineConfig) -> Result<Running, EngineError> {
    let clock: Arc<dyn WallClock> = match cfg.flows.fixed_time {
        Some(t) => Arc::new(FixedClock(t)),
        None => Arc::new(SystemClock),
    };
    // Flows, with the sentence encoder for intents when it loads.
    let encoder = load_encoder(&cfg.understanding)?;
    let (flows, warnings) = FlowStore::load_with_options(
        &cfg.flows.dir,
        encoder,
        ivr_flow::StoreOptions {
            understanding: cfg.understanding.flow_defaults(),
            vector_cache: cfg.understanding.cache_dir.clone(),
        },
    )?;
    if let Some(e) = flows.vector_cache_error() {
        tracing::warn!("{e} (intent examples are embedded at every start)");
    }
    for w in &warnings {
        tracing::warn!(file = %w.file.display(), line = w.line, "{}", w.message);
    }
    let flows = Arc::new(flows);
    let reloads = crate::console::FlowReloads::default();
    let version = crate::version::folder_version_or_unreadable(&cfg.flows.dir);
    tracing::info!(dir = %cfg.flows.dir.display(), version, "flows loaded");
    reloads.loaded(clock.now_utc(), version);
    let live = crate::live::LiveCalls::default();
    let announcements =
        crate::console::announce::Announcements::new(cfg.console.announcements_dir.clone());

    // Stand-ins (make run, tests): started in-process, the clients pointed at them.
    let mut frontdesk_standin = None;
    if cfg.standins.frontdesk {
        let snapshot = flows.snapshot();
        let munis = snapshot.municipalities.values().map(|m| &**m);
        let s = crate::services::start_frontdesk_standin(munis, clock.clone())
            .await
            .map_err(|source| EngineError::Bind {
                what: "Frontdesk stand-in",
                source,
            })?;
        cfg.integrations.frontdesk.base_url = s.base_url();
        tracing::info!(url = %s.base_url(), "Frontdesk stand-in started");
        frontdesk_standin = Some(s);
    }
    let mut puzzel_standin = None;
    if cfg.standins.puzzel {
        let l = bind_local("Puzzel stand-in").await?;
        let s = ivr_integrations::standin::puzzel::serve(l, Default::default())
            .await
            .map_err(|source| EngineError::Bind {
                what: "Puzzel stand-in",
                source,
            })?;
        cfg.integrations.puzzel.base_url = s.base_url();
        tracing::info!(url = %s.base_url(), "Puzzel stand-in started");
        puzzel_standin = Some(s);
    }

    // Database, integrations and their workers.
    let mut integrations = Integrations::start(&cfg.integrations, clock.clone())
        .await
        .map_err(|e| EngineError::Integrations(e.to_string()))?;
    integrations.spawn_workers(Duration::from_millis(
        cfg.integrations.callbacks.poll_interval_ms.max(100),
    ));
    let integrations = Arc::new(integrations);
    let records = if cfg.records.enabled {
        Some(Records::open(integrations.db().clone()).await?)
    } else {
        None
    };
    let (stop_workers, stop_rx) = watch::channel(false);
    let metrics = Arc::new(Metrics::default());
    // Retention: a pass now, then every interval (crate::retention).
    crate::retention::Retention {
        integrations: integrations.clone(),
        records: records.clone(),
        metrics: metrics.clone(),
        clock: clock.clone(),
        record_days: cfg.records.retention_days,
        transcript_days: cfg.records.transcript_retention_days,
    }
    .spawn(
        Duration::from_secs(cfg.retention.interval_s.max(1)),
        stop_rx.clone(),
    );
    let services = Services::new(integrations.clone());

    // Speech out: every static prompt rendered now, so it plays with no synthesis delay.
    // The prompt cache's folder is ours alone (0700) when we create it.
    if let Some(dir) = cfg.tts.cache.dir.as_deref().filter(|d| !d.exists()) {
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
        {
            tracing::warn!(error = %e, "cannot create the prompt cache folder");
        }
    }
    // Background work (recognition, synthesis) below the calls' media.
    ivr_core::sched::set_background_nice(cfg.media.background_nice);
    // Prompts are cached at each rate calls play them at (the codecs'), so
    // no call converts a prompt or holds a copy of its own.
    let play_rates: Vec<u32> = cfg
        .sip
        .sdp
        .codecs
        .iter()
        .map(|c| call::sdp::media_codec(*c).sample_rate())
        .collect();
    let tts = Arc::new(Tts::new(cfg.tts.clone())?.with_play_rates(play_rates));
    let console_tts: Arc<dyn TextToSpeech> = tts.clone();
    {
        let mut prompts = flows.static_prompts();
        prompts.extend(call::filler_prompts());
        // In a peak every static prompt must play from memory: warn when
        // they do not all fit (the rest would be read from disk per call).
        let sentences: usize = prompts
            .iter()
            .map(|(_, t)| ivr_tts::split_sentences(t).len())
            .sum::<usize>()
            * tts.play_rates().len();
        if sentences > cfg.tts.cache.memory_entries {
            tracing::warn!(
                sentences,
                memory_entries = cfg.tts.cache.memory_entries,
                "the static prompts do not all fit in the prompt cache's memory: raise [tts.cache] memory_entries"
            );
        }
        let tts = tts.clone();
        let t0 = Instant::now();
        let (ok, failed) = tokio::task::spawn_blocking(move || {
            let (mut ok, mut failed) = (0usize, 0usize);
            for (lang, text) in &prompts {
                match tts.prerender_lang(text, *lang) {
                    Ok(_) => ok += 1,
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(lang = lang.code(), error = %e, "static prompt not pre-rendered");
                    }
                }
            }
            (ok, failed)
        })
        .await
        .unwrap_or((0, 0));
        tracing::info!(
            ok,
            failed,
            ms = t0.elapsed().as_millis() as u64,
            "static prompts pre-rendered"
        );
    }

    // Speech in.
    let stt = crate::stt::pool(&cfg.stt).await;
    // End of turn: Silero VAD and Smart Turn (onnxruntime, as the piper voices).
    let turn_models = {
        let (turn, ort) = (cfg.turn.clone(), cfg.tts.onnxruntime.clone());
        tokio::task::spawn_blocking(move || crate::endofturn::TurnModels::load(&turn, &ort))
            .await
            .unwrap_or_default()
    };

    // SIP.
    let turns = TurnTimings::default();
    let tls_config = match cfg.sip.tls.settings() {
        Some(s) => Some(Arc::new(crate::sip::Tls::load(&s)?)),
        None => None,
    };
    let listen = SipListenConfig {
        udp: cfg.sip.udp.clone(),
        tcp: cfg.sip.tcp.clone(),
        advertised: cfg.sip.advertised,
        tls: cfg.sip.tls.listen.clone(),
        advertised_tls: cfg.sip.tls.advertised,
        tls_config,
        trunk_sources: cfg
            .trunks
            .iter()
            .flat_map(|t| t.sources.iter().copied())
            .collect(),
        tcp_limits: crate::sip::TcpLimits {
            max_connections: cfg.sip.tcp_max_connections,
            idle_timeout: Duration::from_secs(cfg.sip.tcp_idle_timeout_s),
            message_timeout: Duration::from_secs(cfg.sip.tcp_message_timeout_s),
        },
    };
    let max_calls = cfg.sip.max_calls;
    check_descriptor_limit(max_calls as u64);
    let endpoint_sip = cfg.sip.clone();
    let trunk_access: Vec<_> = cfg.trunks.iter().map(|t| t.access()).collect();
    let (sip, events) = SipService::start(listen, move |adv| {
        let mut e = EndpointConfig::new(adv);
        e.max_calls = max_calls;
        e.user_agent = endpoint_sip.server_header;
        e.trunks = Some(trunk_access);
        e.unknown_sources = match endpoint_sip.unknown_sources {
            crate::config::UnknownSources::Forbidden => ivr_sip::guard::UnknownSource::Forbidden,
            crate::config::UnknownSources::Silence => ivr_sip::guard::UnknownSource::Silence,
        };
        e.rate_limit = endpoint_sip.outside_rate.limit(4096);
        e.digest_realm = endpoint_sip.digest_realm;
        e
    })
    .await?;
    let sip_udp = sip.handle().local_addr(Transport::Udp);
    let sip_tls = sip.handle().local_addr(Transport::Tls);

    let shared = Arc::new(CallShared {
        sip: sip.handle(),
        tts: tts as Arc<dyn TextToSpeech>,
        stt: stt.clone(),
        services,
        records,
        metrics: metrics.clone(),
        clock: clock.clone(),
        flows_dir: cfg.flows.dir.clone(),
        media: cfg.media.clone(),
        turn: cfg.turn.clone(),
        turn_models,
        sdp: cfg.sip.sdp.clone(),
        transfer_domain: cfg.sip.transfer_domain.clone(),
        timings: cfg.call_timings(),
        keep_transcripts: cfg.records.keep_transcripts,
        turns: turns.clone(),
        live: live.clone(),
        announcements: announcements.clone(),
        // Started here, on the runtime, so its threads run at the media's priority.
        embed: crate::call::jobs::EmbedPool::per_core(),
    });
    let softphone = (cfg.console.enabled && cfg.webrtc.enabled)
        .then(|| crate::webrtc::Softphone::new(shared.clone(), flows.clone(), cfg.webrtc.clone()));
    let state = Arc::new(State {
        draining: Arc::new(AtomicBool::new(false)),
        stt,
    });
    let dispatch = crate::dispatch::spawn(
        Dispatcher {
            sip: sip.handle(),
            flows: flows.clone(),
            setup: Arc::new(AcceptCalls(shared)),
            metrics: metrics.clone(),
            draining: state.draining.clone(),
            max_setups: max_calls,
            trunks: Arc::new(cfg.trunks.clone()),
        },
        events,
    );

    // Flow reload.
    if cfg.flows.reload_poll_ms > 0 {
        let flows = flows.clone();
        let reloads = reloads.clone();
        let clock = clock.clone();
        let every = Duration::from_millis(cfg.flows.reload_poll_ms);
        let dir = cfg.flows.dir.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.changed() => return,
                }
                if flows.changed() {
                    match flows.reload() {
                        Ok(_) => {
                            let version = crate::version::folder_version_or_unreadable(&dir);
                            tracing::info!(
                                version,
                                "flows reloaded; new calls get the new version"
                            );
                            reloads.loaded(clock.now_utc(), version);
                        }
                        Err(e) => {
                            let errors = match &e {
                                ivr_flow::StoreError::Invalid(diags) => diags
                                    .iter()
                                    .filter(|d| d.is_error())
                                    .map(|d| {
                                        format!(
                                            "{}:{}:{}: {}",
                                            d.file.display(),
                                            d.line,
                                            d.col,
                                            d.message
                                        )
                                    })
                                    .collect(),
                                other => vec![other.to_string()],
                            };
                            reloads.failed(clock.now_utc(), errors);
                            tracing::warn!(error = %e, "flows changed but do not load; the old version keeps serving")
                        }
                    }
                }
            }
        });
    }

    // HTTP.
    let http = match cfg.http.listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| EngineError::Bind {
                    what: "HTTP",
                    source,
                })?;
            let bound = l.local_addr().ok();
            let mut app = crate::http::router(crate::http::HttpState {
                metrics: metrics.clone(),
                stt: state.stt.clone(),
                sip: sip.handle(),
                draining: state.clone() as Arc<dyn crate::http::Draining>,
                reloads: reloads.clone(),
                announcements: announcements.clone(),
            });
            if cfg.console.enabled {
                let console = crate::console::ConsoleState::open(crate::console::ConsoleParts {
                    cfg: cfg.console.clone(),
                    db: integrations.db().clone(),
                    flows: flows.clone(),
                    reloads: reloads.clone(),
                    live: live.clone(),
                    announcements: announcements.clone(),
                    integrations: Some(integrations.clone()),
                    tts: Some(console_tts.clone()),
                    clock: clock.clone(),
                    records: crate::console::RecordsView {
                        enabled: cfg.records.enabled,
                        keep_transcripts: cfg.records.keep_transcripts,
                        retention_days: cfg.records.transcript_retention_days,
                    },
                    softphone: softphone.clone(),
                    flows_dir: cfg.flows.dir.clone(),
                })
                .await?;
                announcements.spawn_refresh(integrations.db().clone(), stop_rx.clone());
                app = app.merge(crate::console::router(console));
            }
            let app = crate::console::guard_metrics(app, &cfg.console);
            let mut stop = stop_rx.clone();
            let limits = cfg.http.limits();
            tokio::spawn(crate::http::serve(l, app, limits, async move {
                let _ = stop.changed().await;
            }));
            bound
        }
        None => None,
    };
    Ok(Running {
        sip_udp,
        sip_tls,
        http,
        frontdesk_standin,
        puzzel_standin,
        metrics,
        turns,
        state,
        stop_workers,
        integrations,
        sip: Some(sip),
        dispatch,
    })
}

impl crate::http::Draining for State {
    fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

impl Running {
    /// Calls in progress.
    pub fn active_calls(&self) -> u64 {
        self.metrics.active()
    }

    /// Timings of every answered turn from now on (see [`crate::turns`]
    /// for what a record holds and what happens when the receiver lags).
    pub fn turn_timings(&self) -> tokio::sync::broadcast::Receiver<TurnTiming> {
        self.turns.subscribe()
    }

    /// Stops taking calls, lets calls finish for up to `drain`, hangs up the
    /// rest and stops.
    pub async fn shutdown(mut self, drain: Duration) {
        self.state.draining.store(true, Ordering::Relaxed);
        if let Some(sip) = &self.sip {
            sip.handle().set_draining(true).await;
        }
        tracing::info!(
            active = self.metrics.active(),
            "draining: new calls get 503"
        );
        let deadline = Instant::now() + drain;
        let busy = |r: &Running| r.metrics.active() > 0 || r.dispatch.setting_up() > 0;
        while busy(&self) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if busy(&self) {
            tracing::warn!(
                active = self.metrics.active(),
                "drain deadline reached; hanging up"
            );
        }
        // Every call still up (or still being set up) is told to hang up.
        let tasks = self.dispatch.finish().await;
        let until = Instant::now() + Duration::from_secs(3);
        while self.metrics.active() > 0 && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        // Let the last BYEs leave before the sockets close.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = self.stop_workers.send(true);
        // The hand-off and mail workers finish their pass; the database closes.
        self.integrations.shutdown().await;
        if let Some(s) = self.sip.take() {
            s.shutdown();
        }
        self.dispatch.abort();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_open_file_limit_is_read_from_proc() {
        // Linux only (the engine's platform); the test machine has one.
        let l = super::open_file_limit().expect("/proc/self/limits");
        assert!(l >= 64, "{l}");
    }
}
