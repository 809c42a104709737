//! The engine's configuration (`ivr serve --config FILE`): one TOML file with
//! a section per area. Every key has a default and unknown keys are errors, so
//! a typo names the key instead of being ignored. The shipped, commented file
//! is `config/default.toml`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ivr_sip::guard::IpNet;
use serde::Deserialize;

/// Why the configuration could not be used.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown key or a wrong type. Only
    /// toml's message is kept, not its quote of the line, which could hold
    /// a secret read from `*_env` / `*_file`.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// What toml says.
        message: String,
    },
    /// A value parses but cannot work.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A secret given by `*_env` or `*_file` cannot be had (the message
    /// names the key and the variable or file, never a value).
    #[error("{0}")]
    Secret(#[from] crate::secrets::SecretError),
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// `[sip]`.
    pub sip: SipConfig,
    /// `[[trunk]]`: who may send calls. Default: one trunk, `loopback`
    /// (127.0.0.0/8 and ::1), so `make run` and the tests can call.
    #[serde(rename = "trunk")]
    pub trunks: Vec<TrunkConfig>,
    /// `[media]`.
    pub media: MediaConfig,
    /// `[turn]`: voice activity and end-of-turn models.
    pub turn: TurnConfig,
    /// `[flows]`.
    pub flows: FlowsConfig,
    /// `[understanding]`.
    pub understanding: UnderstandingConfig,
    /// `[stt]` (see `ivr_stt::SttConfig`).
    pub stt: ivr_stt::SttConfig,
    /// `[tts]` (see `ivr_tts::Config`).
    pub tts: ivr_tts::Config,
    /// `[integrations]` (see `ivr_integrations::config::Config`).
    pub integrations: ivr_integrations::config::Config,
    /// `[standins]`.
    pub standins: StandinsConfig,
    /// `[http]`.
    pub http: HttpConfig,
    /// `[records]`.
    pub records: RecordsConfig,
    /// `[shutdown]`.
    pub shutdown: ShutdownConfig,
    /// `[console]` (see [`crate::console::ConsoleConfig`]).
    pub console: crate::console::ConsoleConfig,
    /// `[webrtc]` (see [`crate::webrtc::WebRtcConfig`]).
    pub webrtc: crate::webrtc::WebRtcConfig,
    /// `[retention]`.
    pub retention: RetentionConfig,
}

/// `[retention]`: the background purge of personal data (see
/// [`crate::retention`]; how long each kind is kept is set beside it:
/// `[records]`, `[integrations] retention_days`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Seconds between passes (the first runs at start).
    pub interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { interval_s: 3600 }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            sip: SipConfig::default(),
            trunks: vec![TrunkConfig::loopback()],
            media: MediaConfig::default(),
            turn: TurnConfig::default(),
            flows: FlowsConfig::default(),
            understanding: UnderstandingConfig::default(),
            stt: ivr_stt::SttConfig::default(),
            tts: ivr_tts::Config::default(),
            integrations: ivr_integrations::config::Config::default(),
            standins: StandinsConfig::default(),
            http: HttpConfig::default(),
            records: RecordsConfig::default(),
            shutdown: ShutdownConfig::default(),
            retention: RetentionConfig::default(),
            console: crate::console::ConsoleConfig::default(),
            webrtc: crate::webrtc::WebRtcConfig::default(),
        }
    }
}

impl EngineConfig {
    /// Reads and validates a file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and, for TOML errors, line and column.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse {
                line,
                column,
                message,
                ..
            } => ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] or [`ConfigError::Invalid`].
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        Self::parse_with_env(text, &|k| std::env::var(k).ok())
    }

    /// [`EngineConfig::parse`] with the environment given (tests).
    ///
    /// # Errors
    /// [`ConfigError::Parse`], [`ConfigError::Invalid`] or [`ConfigError::Secret`].
    pub fn parse_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = crate::secrets::resolve(text, env)?;
        let cfg: EngineConfig = toml::from_str(&text).map_err(|e: toml::de::Error| {
            let (line, column) = line_column(&text, e.span().map_or(0, |s| s.start));
            ConfigError::Parse {
                path: PathBuf::from("<config>"),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] with the key and the fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sip.udp.is_empty() && self.sip.tcp.is_empty() && self.sip.tls.listen.is_empty() {
            return Err(ConfigError::Invalid(
                "[sip] needs at least one `udp` or `tcp` listen address (or [sip.tls] listen)"
                    .into(),
            ));
        }
        let tls = &self.sip.tls;
        if !tls.listen.is_empty() && tls.settings().is_none() {
            return Err(ConfigError::Invalid(
                "[sip.tls] listen needs cert_file and key_file (PEM)".into(),
            ));
        }
        if tls.client_auth != crate::sip::ClientAuth::None && tls.ca_file.is_none() {
            return Err(ConfigError::Invalid(
                "[sip.tls] client_auth needs ca_file: the roots client certificates are checked against"
                    .into(),
            ));
        }
        if self.media.srtp == ivr_sip::sdp::SrtpPolicy::Required && tls.listen.is_empty() {
            return Err(ConfigError::Invalid(
                "[media] srtp = \"required\" needs [sip.tls] listen: SRTP keys are only exchanged over TLS"
                    .into(),
            ));
        }
        if self.media.rtp_port_min >= self.media.rtp_port_max
            || !self.media.rtp_port_min.is_multiple_of(2)
        {
            return Err(ConfigError::Invalid(
                "[media] rtp_port_min must be even and below rtp_port_max".into(),
            ));
        }
        if !END_SILENCE_MS.contains(&self.media.end_silence_ms) {
            return Err(ConfigError::Invalid(format!(
                "[media] end_silence_ms must be {} to {} (it is {})",
                END_SILENCE_MS.start(),
                END_SILENCE_MS.end(),
                self.media.end_silence_ms
            )));
        }
        let eager = self.media.eager_stt_ms;
        if eager != 0 && !(EAGER_STT_MIN_MS..self.media.end_silence_ms).contains(&eager) {
            return Err(ConfigError::Invalid(format!(
                "[media] eager_stt_ms must be 0 (off) or {EAGER_STT_MIN_MS} to below end_silence_ms ({}); it is {eager}",
                self.media.end_silence_ms
            )));
        }
        if !(0..=19).contains(&self.media.background_nice) {
            return Err(ConfigError::Invalid(format!(
                "[media] background_nice must be 0 to 19 (it is {})",
                self.media.background_nice
            )));
        }
        self.turn.validate()?;
        if !self
            .sip
            .server_header
            .bytes()
            .all(|b| b == b' ' || b.is_ascii_graphic())
        {
            return Err(ConfigError::Invalid(
                "[sip] server_header must be printable ASCII on one line (or empty for none)"
                    .into(),
            ));
        }
        self.validate_trunks()?;
        self.sip
            .sdp
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[sip.sdp]: {e}")))?;
        self.integrations
            .validate()
            .map_err(|e| ConfigError::Invalid(format!("[integrations]: {e}")))?;
        Ok(())
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `[sip]`: signalling.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// UDP listen addresses (port 0: any free port, printed at start).
    pub udp: Vec<SocketAddr>,
    /// TCP listen addresses (port 0: the port of the UDP socket on the same IP).
    pub tcp: Vec<SocketAddr>,
    /// Address put in Via/Contact when the listen address is 0.0.0.0/::.
    pub advertised: Option<SocketAddr>,
    /// Concurrent calls before new INVITEs get 503.
    pub max_calls: usize,
    /// `[sip.sdp]`: codec preference, telephone-event, ptime.
    pub sdp: ivr_sip::sdp::SdpConfig,
    /// Where a transfer target that is only a number (no `sip:`) is sent:
    /// `sip:NUMBER@<transfer_domain>`; empty: the caller's host.
    pub transfer_domain: String,
    /// Seconds to wait for the transfer's outcome (NOTIFY); without one in
    /// time the transfer counts as failed and the flow hears of it.
    pub transfer_timeout_s: u64,
    /// Seconds to wait for the ACK of our 200 OK before the call is given up
    /// (the INVITE transaction itself retransmits the 200 for 64*T1 = 32 s).
    pub ack_timeout_s: u64,
    /// Value of the `Server` header on responses and `User-Agent` on our
    /// requests. Default `ivr-engine`, without a version (a version tells a
    /// scanner which known flaws to try); empty: no such header at all.
    pub server_header: String,
    /// What a request from a source outside every `[[trunk]]` gets:
    /// `"forbidden"` (403) or `"silence"` (no reply at all).
    pub unknown_sources: UnknownSources,
    /// Rate limit per source address outside the trunks (requests outside
    /// dialogs; beyond it they are dropped). Trunks have their own buckets.
    pub outside_rate: RateConfig,
    /// Realm of digest challenges to trunks with credentials.
    pub digest_realm: String,
    /// SIP over TCP: most connections open at once (beyond it new ones
    /// are closed at once).
    pub tcp_max_connections: usize,
    /// SIP over TCP: a connection with nothing received for this long is
    /// closed (seconds; trunks send CRLF keep-alives more often).
    pub tcp_idle_timeout_s: u64,
    /// SIP over TCP: a message must arrive whole within this many seconds
    /// of its first byte, or the connection is closed (slow senders).
    pub tcp_message_timeout_s: u64,
    /// `[sip.tls]`: SIP over TLS.
    pub tls: SipTlsConfig,
}

/// `[sip] unknown_sources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSources {
    /// 403 Forbidden, the same for every number.
    #[default]
    Forbidden,
    /// No reply (the port looks closed).
    Silence,
}

/// A token bucket: sustained requests per second and burst.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

impl RateConfig {
    /// As the SIP guard's limit (`max_sources` bounds tracked sources).
    pub fn limit(self, max_sources: usize) -> ivr_sip::guard::RateLimit {
        ivr_sip::guard::RateLimit {
            per_second: self.per_second,
            burst: self.burst,
            max_sources,
        }
    }
}

/// `[sip.tls]`: SIP over TLS (RFC 3261 sec. 26.2, RFC 5630). Off while
/// `listen` is empty.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipTlsConfig {
    /// TLS listen addresses (usually port 5061).
    pub listen: Vec<SocketAddr>,
    /// Address put in Via/Contact of TLS messages when the listen address
    /// is 0.0.0.0/:: (default: `[sip] advertised`'s IP with the TLS port).
    pub advertised: Option<SocketAddr>,
    /// Our certificate chain, PEM, leaf first.
    pub cert_file: Option<PathBuf>,
    /// Our private key, PEM (read once at start, never logged).
    pub key_file: Option<PathBuf>,
    /// Roots (PEM) the trunks' certificates are verified against: client
    /// certificates on the listener, server certificates on connections we
    /// open. Without it we open no TLS connection.
    pub ca_file: Option<PathBuf>,
    /// Client certificates on the listener: "none", "optional" or "required".
    pub client_auth: crate::sip::ClientAuth,
    /// Name the trunk's certificate must carry on connections we open
    /// (empty: the IP address we connect to).
    pub server_name: String,
    /// Longest TLS handshake (milliseconds).
    pub handshake_timeout_ms: u64,
    /// A connection with no traffic for this long is closed (seconds; 0: never).
    pub idle_timeout_s: u64,
    /// TLS connections open at once; more are closed on accept.
    pub max_connections: usize,
}

impl Default for SipTlsConfig {
    fn default() -> Self {
        SipTlsConfig {
            listen: Vec::new(),
            advertised: None,
            cert_file: None,
            key_file: None,
            ca_file: None,
            client_auth: crate::sip::ClientAuth::None,
            server_name: String::new(),
            handshake_timeout_ms: 5000,
            idle_timeout_s: 3600,
            max_connections: 1000,
        }
    }
}

impl SipTlsConfig {
    /// The transport's settings, when TLS is configured (`cert_file` and
    /// `key_file` set).
    pub fn settings(&self) -> Option<crate::sip::TlsSettings> {
        Some(crate::sip::TlsSettings {
            cert_file: self.cert_file.clone()?,
            key_file: self.key_file.clone()?,
            ca_file: self.ca_file.clone(),
            client_auth: self.client_auth,
            server_name: self.server_name.clone(),
            limits: crate::sip::StreamLimits {
                max_connections: self.max_connections,
                handshake_timeout: std::time::Duration::from_millis(self.handshake_timeout_ms),
                idle_timeout: (self.idle_timeout_s > 0)
                    .then(|| std::time::Duration::from_secs(self.idle_timeout_s)),
            },
        })
    }
}

/// `[[trunk]]`: one SIP trunk (SBC, operator, PBX) allowed to send calls.
/// A request outside a dialog belongs to the first trunk whose `sources`
/// hold its address; with `username`/`password` it must also answer a
/// digest challenge. Everything else gets `[sip] unknown_sources`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkConfig {
    /// Name, for logs, metrics and the call record.
    pub name: String,
    /// Source addresses or CIDR networks (`192.0.2.10`, `198.51.100.0/28`).
    /// Empty: any source, and then credentials are required.
    pub sources: Vec<IpNet>,
    /// Digest user name the trunk authenticates with (optional).
    pub username: Option<String>,
    /// Digest password (or `password_env` / `password_file`).
    pub password: Option<String>,
    /// Called numbers this trunk may reach: exact (`+4570101010`) or a
    /// prefix ending in `*` (`+457010*`); empty: every routed number. A
    /// number outside gets the same 404 as a number with no route.
    pub numbers: Vec<String>,
    /// Concurrent calls from this trunk before 503 (0: only `[sip] max_calls`).
    pub max_calls: usize,
    /// New requests per second from this trunk (all its sources together).
    pub calls_per_second: f64,
    /// Burst above `calls_per_second`.
    pub burst: f64,
    /// Symmetric RTP for this trunk (overrides `[media] latch`).
    pub latch: Option<bool>,
    /// How this trunk's calls must arrive: "any" (default) or "tls" (a
    /// call from the trunk over UDP or TCP gets 403).
    pub transport: TrunkTransport,
    /// SRTP for this trunk's calls (overrides `[media] srtp`): "off",
    /// "optional" or "required".
    pub srtp: Option<ivr_sip::sdp::SrtpPolicy>,
}

/// `[[trunk]] transport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrunkTransport {
    /// UDP, TCP or TLS.
    #[default]
    Any,
    /// TLS only.
    Tls,
}

impl TrunkTransport {
    /// Whether a call over `t` is acceptable.
    pub fn admits(self, t: ivr_sip::Transport) -> bool {
        self == TrunkTransport::Any || t == ivr_sip::Transport::Tls
    }
}

impl std::fmt::Debug for TrunkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrunkConfig")
            .field("name", &self.name)
            .field("sources", &self.sources)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<secret>"))
            .field("numbers", &self.numbers)
            .field("max_calls", &self.max_calls)
            .field("calls_per_second", &self.calls_per_second)
            .field("burst", &self.burst)
            .field("latch", &self.latch)
            .field("transport", &self.transport)
            .field("srtp", &self.srtp)
            .finish()
    }
}

impl Default for TrunkConfig {
    fn default() -> Self {
        TrunkConfig {
            name: String::new(),
            sources: Vec::new(),
            username: None,
            password: None,
            numbers: Vec::new(),
            max_calls: 0,
            calls_per_second: 50.0,
            burst: 100.0,
            latch: None,
            transport: TrunkTransport::Any,
            srtp: None,
        }
    }
}

impl TrunkConfig {
    /// The default trunk: this machine (127.0.0.0/8, ::1).
    pub fn loopback() -> Self {
        TrunkConfig {
            name: "loopback".into(),
            sources: vec![
                IpNet {
                    addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    prefix: 8,
                },
                IpNet {
                    addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
            ..TrunkConfig::default()
        }
    }

    /// Whether this trunk may reach `called` (a user part).
    pub fn permits(&self, called: &str) -> bool {
        self.numbers.is_empty()
            || self.numbers.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => called.starts_with(prefix),
                None => called == p,
            })
    }

    /// The SIP guard's view of this trunk.
    pub fn access(&self) -> ivr_sip::guard::TrunkAccess {
        ivr_sip::guard::TrunkAccess {
            name: self.name.clone(),
            allow: self.sources.clone(),
            digest: match (&self.username, &self.password) {
                (Some(u), Some(p)) => Some(ivr_sip::guard::TrunkCredentials {
                    username: u.clone(),
                    password: p.clone(),
                }),
                _ => None,
            },
            max_calls: self.max_calls,
            rate: Some(ivr_sip::guard::RateLimit {
                per_second: self.calls_per_second,
                burst: self.burst,
                max_sources: 1,
            }),
        }
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            udp: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060)],
            tcp: Vec::new(),
            advertised: None,
            max_calls: 200,
            sdp: ivr_sip::sdp::SdpConfig::default(),
            transfer_domain: String::new(),
            transfer_timeout_s: 30,
            ack_timeout_s: 40,
            server_header: "ivr-engine".into(),
            unknown_sources: UnknownSources::Forbidden,
            outside_rate: RateConfig {
                per_second: 5.0,
                burst: 10.0,
            },
            digest_realm: "ivr".into(),
            tcp_max_connections: 256,
            tcp_idle_timeout_s: 120,
            tcp_message_timeout_s: 10,
            tls: SipTlsConfig::default(),
        }
    }
}

impl EngineConfig {
    fn validate_trunks(&self) -> Result<(), ConfigError> {
        let bad = |name: &str, what: String| {
            Err(ConfigError::Invalid(format!("[[trunk]] `{name}`: {what}")))
        };
        let mut names = std::collections::HashSet::new();
        for t in &self.trunks {
            if t.name.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "every [[trunk]] needs a `name`".into(),
                ));
            }
            if !names.insert(t.name.as_str()) {
                return bad(&t.name, "the name is used twice".into());
            }
            if t.username.is_some() != t.password.is_some() {
                return bad(
                    &t.name,
                    "give both `username` and `password` (or `password_env` / `password_file`), or neither".into(),
                );
            }
            if t.latch == Some(true) && t.sources.len() > ivr_media::rtp::LatchPolicy::MAX_NETS {
                return bad(
                    &t.name,
                    format!(
                        "symmetric RTP (`latch`) takes at most {} `sources` networks; give the media networks as wider CIDRs",
                        ivr_media::rtp::LatchPolicy::MAX_NETS
                    ),
                );
            }
            if t.sources.is_empty() && t.username.is_none() {
                return bad(
                    &t.name,
                    "no `sources` and no credentials would admit anyone; list its addresses".into(),
                );
            }
            if !(t.calls_per_second > 0.0 && t.burst >= 1.0) {
                return bad(
                    &t.name,
                    "`calls_per_second` must be above 0 and `burst` at least 1".into(),
                );
            }
            let secure = t.transport == TrunkTransport::Tls
                || t.srtp == Some(ivr_sip::sdp::SrtpPolicy::Required);
            if secure && self.sip.tls.listen.is_empty() {
                return bad(
                    &t.name,
                    "`transport = \"tls\"` and `srtp = \"required\"` need [sip.tls] listen".into(),
                );
            }
            for n in &t.numbers {
                let digits = n.strip_suffix('*').unwrap_or(n);
                let digits = digits.strip_prefix('+').unwrap_or(digits);
                if !digits.bytes().all(|b| b.is_ascii_alphanumeric()) || n.is_empty() {
                    return bad(
                        &t.name,
                        format!("number pattern `{n}` must be digits, optionally with a leading + and a trailing *"),
                    );
                }
            }
        }
        let r = self.sip.outside_rate;
        if !(r.per_second > 0.0 && r.burst >= 1.0) {
            return Err(ConfigError::Invalid(
                "[sip] outside_rate needs per_second above 0 and burst at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The trunk of this name.
    pub fn trunk(&self, name: &str) -> Option<&TrunkConfig> {
        self.trunks.iter().find(|t| t.name == name)
    }
}

/// `[media]`: RTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Address RTP sockets bind to and SDP announces.
    pub rtp_ip: IpAddr,
    /// First RTP port (even; RTCP uses the next odd one).
    pub rtp_port_min: u16,
    /// Last RTP port.
    pub rtp_port_max: u16,
    /// No RTP from the caller for this long ends the call (seconds).
    pub media_timeout_s: u64,
    /// Nothing (RTP or RTCP) from the caller within this many seconds of
    /// the ACK ends the call (0: off). What we stream to the SDP address
    /// before the far end is heard from is bounded by it: a forged SDP
    /// address (amplification towards a victim) gets at most this much.
    pub first_media_timeout_s: u64,
    /// Symmetric RTP for a far end behind NAT (default false, strict).
    /// Strict: RTP is taken only from the address and port the SDP
    /// negotiated and RTCP only from its `a=rtcp` address (else RTP port +
    /// 1); anything else is dropped and counted
    /// (`ivr_rtp_dropped_foreign_total`), so nobody else can hear the call
    /// or key for the caller. On: the first source on the negotiated IP is
    /// latched, whatever its port, once; nothing else is taken while the call
    /// is up. Only a re-INVITE moves the address.
    pub latch: bool,
    /// Longest call before the engine hangs up (seconds), a guard against stuck calls.
    pub max_call_s: u64,
    /// An integration slower than this plays a filler prompt (milliseconds).
    pub filler_after_ms: u64,
    /// Longest pause between the keys of one entry (milliseconds): after a
    /// key the question waits at most this long (or its own timeout, if
    /// shorter) for the next one before the entry counts as complete.
    pub inter_digit_ms: u64,
    /// Longest the caller counts as still speaking after speech started
    /// without an utterance coming of it (milliseconds): the question's
    /// no-input timer is paused while the caller speaks and resumes after
    /// this. Keep it above the longest utterance (15 s).
    pub hearing_cap_ms: u64,
    /// Silence after the caller's speech that ends an utterance (milliseconds):
    /// the start and the floor of the adaptive end silence, which grows up to
    /// 800 ms for a caller who pauses inside sentences.
    pub end_silence_ms: u64,
    /// Eager end of turn (milliseconds; 0: off): after this much silence the
    /// utterance so far is recognised speculatively, on an idle STT worker
    /// only, while the rest of the end silence is waited for. If the caller
    /// stays quiet the transcript is used; if they speak again it is thrown
    /// away. Must be below `end_silence_ms`. 240 ms cut the median turn
    /// latency by ~220 ms in the latency harness. Whisper once heard the
    /// speculative audio of "English please" as "indrush please" where the
    /// confirmed audio gave the right words; the recogniser now settles every
    /// utterance's tail, so both are the same samples (125 of 126 pairs gave
    /// the same transcript over the call-like speech set, the one left
    /// differing only in a token limit since fixed:
    /// `crates/ivr-stt/tests/eager_transcripts.rs`). 150 by default: with
    /// `[turn] end_on_answer` a speculative transcript that already answers
    /// the question ends the turn there, and 150 cut off no more callers
    /// than 200 on either end-of-turn set while 120 cut off one more
    /// (`benches/turn_answer.rs`, docs/turn-detection.md).
    pub eager_stt_ms: u64,
    /// SRTP with SDES keys (RFC 4568): "off" (plain RTP; RTP/SAVP offers
    /// get 488), "optional" (SRTP when a call over TLS offers it, else
    /// plain RTP) or "required" (only SRTP over TLS signalling; a plain
    /// offer or a call over UDP/TCP gets 488). Keys are only ever exchanged
    /// over TLS, since they travel in the SDP; ours are fresh per call.
    pub srtp: ivr_sip::sdp::SrtpPolicy,
    /// Nice value (0-19) of the background threads: speech recognition,
    /// synthesis, the end-of-turn model. Above 0 they run below the calls'
    /// RTP pacing in CPU priority, so a recognition that fills both cores
    /// does not hold packets back (`ivr_core::sched`). 0: same priority.
    pub background_nice: i32,
}

/// Bounds of `[media] end_silence_ms`: below 250 ms the VAD's soft word
/// tails and short pauses end utterances; above 800 ms is the adaptive ceiling.
pub const END_SILENCE_MS: std::ops::RangeInclusive<u64> = 250..=800;
/// Lower bound of a non-zero `[media] eager_stt_ms`: shorter silences are
/// inside almost every sentence, so nearly every speculation would be wasted.
pub const EAGER_STT_MIN_MS: u64 = 100;

impl EngineConfig {
    /// The timing policies of a call ([`crate::call::core::CallTimings`]).
    pub fn call_timings(&self) -> crate::call::core::CallTimings {
        let ms = std::time::Duration::from_millis;
        let s = std::time::Duration::from_secs;
        crate::call::core::CallTimings {
            ack_wait: s(self.sip.ack_timeout_s),
            inter_digit: ms(self.media.inter_digit_ms),
            hearing_cap: ms(self.media.hearing_cap_ms),
            filler_after: ms(self.media.filler_after_ms),
            transfer_timeout: s(self.sip.transfer_timeout_s),
            max_call: s(self.media.max_call_s),
        }
    }
}

impl MediaConfig {
    /// The endpointing settings of a call's media session.
    pub fn endpointing(&self) -> ivr_media::endpointing::EndpointingConfig {
        let ms = std::time::Duration::from_millis;
        ivr_media::endpointing::EndpointingConfig {
            end_silence: ms(self.end_silence_ms),
            eager_silence: ms(self.eager_stt_ms),
            ..Default::default()
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            rtp_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            rtp_port_min: 20_000,
            rtp_port_max: 29_998,
            media_timeout_s: 30,
            first_media_timeout_s: 5,
            latch: false,
            max_call_s: 1800,
            filler_after_ms: 1500,
            inter_digit_ms: 5000,
            hearing_cap_ms: 15_000,
            end_silence_ms: 400,
            eager_stt_ms: 150,
            srtp: ivr_sip::sdp::SrtpPolicy::Off,
            background_nice: ivr_core::sched::DEFAULT_BACKGROUND_NICE,
        }
    }
}

/// Which voice activity detector decides what is speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VadKind {
    /// Silero VAD (ONNX, `[turn] silero_model`); the energy VAD when the
    /// model or onnxruntime is missing.
    Silero,
    /// The energy + voicing VAD of `ivr_media::vad` (no model).
    Energy,
}

/// `[turn]`: how the engine decides that the caller has finished speaking.
///
/// The utterance ends when, after `smart_turn_silence_ms` of silence, Smart
/// Turn says the sentence is complete; otherwise (or without the model)
/// after the fallback silence: `fallback_silence_ms` with Smart Turn,
/// `[media] end_silence_ms` without. Figures behind the defaults:
/// `benches/turn_detect.rs` (docs/turn-detection.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// `silero` or `energy`.
    pub vad: VadKind,
    /// The Silero VAD model (`make setup` fetches it).
    pub silero_model: PathBuf,
    /// Ask Smart Turn whether the sentence is finished.
    pub smart_turn: bool,
    /// The Smart Turn model (`make setup` fetches it). Missing: the engine
    /// runs without it (and says so in the log).
    pub smart_turn_model: PathBuf,
    /// Silence after speech before Smart Turn is asked (ms, 100 to 400).
    pub smart_turn_silence_ms: u64,
    /// Smart Turn's probability at or above which the turn is complete (0-1).
    pub smart_turn_threshold: f32,
    /// Silence that ends the utterance when Smart Turn says "not finished"
    /// (ms, 300 to 2000); it adapts upwards to callers who pause.
    pub fallback_silence_ms: u64,
    /// Smart Turn sessions (each runs one prediction at a time, one thread).
    pub smart_turn_sessions: usize,
    /// End the turn at the eager end of turn's short silence when its
    /// speculative transcript already answers a closed question as the flow
    /// would take it (yes/no, a confirmation, ten CPR digits, a phone
    /// number: `ivr_flow::Interpreter::would_answer`). Needs `[media]
    /// eager_stt_ms`.
    pub end_on_answer: bool,
    /// With `end_on_answer`, also end the turn early on an open answer (a
    /// menu's errand, a date) when the flow would take it and its words
    /// sound finished (no trailing preposition, article, conjunction,
    /// auxiliary or filler; a date ending on a month or weekday, not on its
    /// day: `ivr_flow::ending`).
    pub end_on_open_answer: bool,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            vad: VadKind::Energy,
            silero_model: PathBuf::from("models/turn/silero_vad.onnx"),
            smart_turn: false,
            smart_turn_model: PathBuf::from("models/turn/smart-turn-v3.2-cpu.onnx"),
            smart_turn_silence_ms: 200,
            smart_turn_threshold: 0.5,
            fallback_silence_ms: 700,
            smart_turn_sessions: 2,
            end_on_answer: true,
            end_on_open_answer: true,
        }
    }
}

impl TurnConfig {
    /// The endpointing of a call: `[media]`'s, and with Smart Turn loaded a
    /// tentative end after `smart_turn_silence_ms` for it to judge, with
    /// `fallback_silence_ms` as the end silence when it says "not finished".
    /// With Silero loaded the utterance keeps 400 ms of audio from before its
    /// detected start (Silero says "speech" a chunk or two after the onset,
    /// later than the energy VAD, and 200 ms clipped first syllables).
    pub fn endpointing(
        &self,
        media: &MediaConfig,
        smart_turn_loaded: bool,
        silero_loaded: bool,
    ) -> ivr_media::endpointing::EndpointingConfig {
        let ms = std::time::Duration::from_millis;
        let mut base = media.endpointing();
        if silero_loaded {
            base.preroll = ms(400);
        }
        if !smart_turn_loaded {
            return base;
        }
        let fallback = ms(self.fallback_silence_ms);
        ivr_media::endpointing::EndpointingConfig {
            turn_silence: ms(self.smart_turn_silence_ms),
            end_silence: fallback,
            min_end_silence: base.min_end_silence.min(fallback),
            max_end_silence: base.max_end_silence.max(fallback),
            ..base
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(100..=400).contains(&self.smart_turn_silence_ms) {
            return bad(format!(
                "[turn] smart_turn_silence_ms must be 100 to 400 (it is {})",
                self.smart_turn_silence_ms
            ));
        }
        if !(300..=2000).contains(&self.fallback_silence_ms)
            || self.fallback_silence_ms <= self.smart_turn_silence_ms
        {
            return bad(format!(
                "[turn] fallback_silence_ms must be 300 to 2000 and above smart_turn_silence_ms (it is {})",
                self.fallback_silence_ms
            ));
        }
        if !(0.0..=1.0).contains(&self.smart_turn_threshold) {
            return bad(format!(
                "[turn] smart_turn_threshold must be 0 to 1 (it is {})",
                self.smart_turn_threshold
            ));
        }
        if !(1..=16).contains(&self.smart_turn_sessions) {
            return bad("[turn] smart_turn_sessions must be 1 to 16".into());
        }
        Ok(())
    }
}

/// `[flows]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// The deployment folder (`tenants.toml` and one folder per municipality).
    pub dir: PathBuf,
    /// How often to look for changed flow files (milliseconds; 0: never reload).
    pub reload_poll_ms: u64,
    /// Pretend it is this instant for opening hours (RFC 3339). For demos
    /// and tests only: leave unset in production.
    pub fixed_time: Option<DateTime<Utc>>,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            dir: PathBuf::from("flows"),
            reload_poll_ms: 2000,
            fixed_time: None,
        }
    }
}

/// `[understanding]`: the sentence-embedding model behind intent
/// recognition (`ivr_flow::intents`, crate `ivr-embed`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UnderstandingConfig {
    /// multilingual-e5-small, 4-bit (`make setup` fetches it here).
    pub model: PathBuf,
    /// Refuse to start when the model cannot be loaded. False (the
    /// default): start anyway, log an error, and recognise intents by their
    /// words alone (keywords, stemming), as `ivr doctor` also reports.
    pub required: bool,
    /// Deployment-wide defaults of a flow's `[understanding]` table (a flow
    /// overrides them): the score the best intent needs.
    pub accept: f32,
    /// The runner-up within this of the best: ask which one was meant.
    pub margin: f32,
    /// Turns closer in meaning to the generic out-of-scope examples than to
    /// the best intent are not understood.
    pub out_of_scope: bool,
    /// How much closer (cosine) the best intent must be than the
    /// out-of-scope examples.
    pub out_of_scope_margin: f32,
    /// A words score at which an intent is taken whatever the meaning says.
    pub words_vouch: f32,
    /// Disk cache of intent example vectors (flow text only, keyed by the
    /// model's hash and the text's), so a start does not embed every
    /// example again; the file is 0600 in a 0700 folder. Unset: memory only.
    pub cache_dir: Option<PathBuf>,
}

impl Default for UnderstandingConfig {
    fn default() -> Self {
        let u = ivr_flow::model::Understanding::default();
        UnderstandingConfig {
            model: PathBuf::from("models/e5-small/e5-small-q4.bin"),
            required: false,
            accept: u.accept,
            margin: u.margin,
            out_of_scope: u.out_of_scope,
            out_of_scope_margin: u.out_of_scope_margin,
            words_vouch: u.words_vouch,
            cache_dir: Some(PathBuf::from(ivr_flow::vector_cache::DEFAULT_DIR)),
        }
    }
}

impl UnderstandingConfig {
    /// The flows' defaults these settings make.
    pub fn flow_defaults(&self) -> ivr_flow::model::Understanding {
        ivr_flow::model::Understanding {
            accept: self.accept,
            margin: self.margin,
            out_of_scope: self.out_of_scope,
            out_of_scope_margin: self.out_of_scope_margin,
            words_vouch: self.words_vouch,
            ..ivr_flow::model::Understanding::default()
        }
    }
}

/// `[standins]`: local stand-ins of external systems, started in-process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StandinsConfig {
    /// Start the Frontdesk stand-in and point `[integrations.frontdesk]` at it.
    pub frontdesk: bool,
    /// Start the Puzzel callback stand-in and point `[integrations.puzzel]` at it.
    pub puzzel: bool,
}

impl Default for StandinsConfig {
    fn default() -> Self {
        StandinsConfig {
            frontdesk: true,
            puzzel: true,
        }
    }
}

/// `[http]`: health and metrics.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address of `/health` and `/metrics`; unset: no HTTP port.
    pub listen: Option<SocketAddr>,
    /// Seconds within which a request head must arrive whole; a keep-alive
    /// connection idle this long is closed too.
    pub header_read_timeout_s: u64,
    /// Seconds a request may take before it is answered 503.
    pub request_timeout_s: u64,
    /// Open connections at most (beyond it new ones are closed at once).
    pub max_connections: usize,
    /// Open connections per client address at most.
    pub max_connections_per_ip: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080)),
            header_read_timeout_s: 10,
            request_timeout_s: 30,
            max_connections: 256,
            max_connections_per_ip: 32,
        }
    }
}

impl HttpConfig {
    /// The listener's limits.
    pub fn limits(&self) -> crate::http::ServeLimits {
        crate::http::ServeLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_s.max(1)),
            request_timeout: std::time::Duration::from_secs(self.request_timeout_s.max(1)),
            max_connections: self.max_connections.max(1),
            max_connections_per_ip: self.max_connections_per_ip.max(1),
        }
    }
}

/// `[records]`: the per-call record in the database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// Write a record per call (table `call_records`).
    pub enabled: bool,
    /// Keep what the caller said (personal data) in the record.
    pub keep_transcripts: bool,
    /// Days to keep transcripts; older ones are blanked by the retention
    /// task (0: forever).
    pub transcript_retention_days: u32,
    /// Days to keep whole call rows, with the calling number (0: forever).
    pub retention_days: u32,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            enabled: true,
            keep_transcripts: false,
            transcript_retention_days: 30,
            retention_days: 90,
        }
    }
}

/// `[shutdown]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownConfig {
    /// After SIGINT/SIGTERM, how long calls in progress may continue (seconds).
    pub drain_s: u64,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { drain_s: 60 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults_with_sip_on_loopback_5060() {
        let c = EngineConfig::parse("").unwrap();
        assert_eq!(c.sip.udp, vec!["127.0.0.1:5060".parse().unwrap()]);
        assert!(c.records.enabled);
    }

    #[test]
    fn the_server_header_defaults_to_no_version_and_refuses_a_line_break() {
        let c = EngineConfig::parse("").unwrap();
        assert_eq!(c.sip.server_header, "ivr-engine");
        let none = EngineConfig::parse("[sip]\nserver_header = \"\"\n").unwrap();
        assert_eq!(none.sip.server_header, "");
        let e = EngineConfig::parse("[sip]\nserver_header = \"x\\r\\nVia: evil\"\n").unwrap_err();
        assert!(e.to_string().contains("server_header"), "{e}");
    }

    #[test]
    fn a_misspelt_key_is_refused_with_its_name() {
        let e = EngineConfig::parse("[sip]\nmax_call = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_call"), "{e}");
    }

    #[test]
    fn smart_turn_asks_after_the_short_silence_and_its_fallback_replaces_the_end_silence() {
        let c = EngineConfig::parse("").unwrap();
        let ms = std::time::Duration::from_millis;
        let on = c.turn.endpointing(&c.media, true, false);
        assert_eq!((on.turn_silence, on.end_silence), (ms(200), ms(700)));
        assert!(on.min_end_silence <= on.end_silence && on.end_silence <= on.max_end_silence);
        // Without the model (missing, or turned off) the [media] end silence is as before.
        let off = c.turn.endpointing(&c.media, false, false);
        assert_eq!((off.turn_silence, off.end_silence), (ms(0), ms(400)));
        let long = EngineConfig::parse("[turn]\nfallback_silence_ms = 1500\n").unwrap();
        assert_eq!(
            long.turn
                .endpointing(&long.media, true, false)
                .max_end_silence,
            ms(1500)
        );
        assert_eq!(c.turn.endpointing(&c.media, true, true).preroll, ms(400));
        for bad in [
            "[turn]\nsmart_turn_silence_ms = 50\n",
            "[turn]\nfallback_silence_ms = 150\nsmart_turn_silence_ms = 200\n",
            "[turn]\nsmart_turn_threshold = 1.5\n",
            "[turn]\nsmart_turn_sessions = 0\n",
            "[turn]\nvad = \"webrtc\"\n",
        ] {
            assert!(EngineConfig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn eager_stt_is_on_at_150_ms_by_default_and_must_come_before_the_end_silence() {
        let c = EngineConfig::parse("").unwrap();
        assert_eq!((c.media.end_silence_ms, c.media.eager_stt_ms), (400, 150));
        assert!(c.turn.end_on_answer);
        let off = EngineConfig::parse("[media]\neager_stt_ms = 0\n").unwrap();
        assert!(off.media.endpointing().eager_silence.is_zero());
        let on = EngineConfig::parse("[media]\neager_stt_ms = 240\n").unwrap();
        let ep = on.media.endpointing();
        assert_eq!(ep.end_silence, std::time::Duration::from_millis(400));
        assert_eq!(ep.eager_silence, std::time::Duration::from_millis(240));
        for bad in [
            "[media]\neager_stt_ms = 400\n",
            "[media]\neager_stt_ms = 50\n",
            "[media]\nend_silence_ms = 300\neager_stt_ms = 300\n",
        ] {
            let e = EngineConfig::parse(bad).unwrap_err();
            assert!(e.to_string().contains("eager_stt_ms"), "{bad}: {e}");
        }
        let e = EngineConfig::parse("[media]\nend_silence_ms = 100\n").unwrap_err();
        assert!(e.to_string().contains("end_silence_ms"), "{e}");
        let c = EngineConfig::parse("[media]\nend_silence_ms = 300\neager_stt_ms = 200\n").unwrap();
        assert_eq!(
            c.media.endpointing().end_silence,
            std::time::Duration::from_millis(300)
        );
    }

    #[test]
    fn call_timing_policies_default_to_the_core_defaults_and_are_configurable() {
        let d = EngineConfig::parse("").unwrap().call_timings();
        assert_eq!(d, crate::call::core::CallTimings::default());
        let c = EngineConfig::parse(
            "[sip]\nack_timeout_s = 20\ntransfer_timeout_s = 12\n\
             [media]\ninter_digit_ms = 3000\nhearing_cap_ms = 20000\nfiller_after_ms = 900\nmax_call_s = 600\n",
        )
        .unwrap()
        .call_timings();
        let (ms, s) = (
            std::time::Duration::from_millis,
            std::time::Duration::from_secs,
        );
        assert_eq!(
            (c.ack_wait, c.transfer_timeout, c.inter_digit, c.hearing_cap),
            (s(20), s(12), ms(3000), ms(20_000))
        );
        assert_eq!((c.filler_after, c.max_call), (ms(900), s(600)));
    }

    #[test]
    fn without_trunks_only_loopback_may_call_and_a_trunk_section_replaces_it() {
        let c = EngineConfig::parse("").unwrap();
        assert_eq!(c.trunks.len(), 1);
        assert_eq!(c.trunks[0].name, "loopback");
        let t = c.trunks[0].access();
        assert!(t
            .allow
            .iter()
            .any(|n| n.contains("127.0.0.1".parse().unwrap())));
        assert!(!t
            .allow
            .iter()
            .any(|n| n.contains("192.0.2.1".parse().unwrap())));
        let c = EngineConfig::parse(
            "[[trunk]]\nname = \"sbc\"\nsources = [\"198.51.100.0/28\"]\n\
             numbers = [\"+4570101010\", \"+457020*\"]\nmax_calls = 30\nlatch = true\n",
        )
        .unwrap();
        assert_eq!(c.trunks.len(), 1);
        let sbc = c.trunk("sbc").unwrap();
        assert!(sbc.permits("+4570101010") && sbc.permits("+4570202020"));
        assert!(!sbc.permits("+4570101011"));
        assert_eq!((sbc.max_calls, sbc.latch), (30, Some(true)));
    }

    #[test]
    fn a_trunk_that_would_admit_anyone_or_is_half_configured_is_refused() {
        for (bad, key) in [
            ("[[trunk]]\nname = \"x\"\n", "admit anyone"),
            (
                "[[trunk]]\nname = \"x\"\nsources = [\"10.0.0.1\"]\nusername = \"u\"\n",
                "password",
            ),
            ("[[trunk]]\nsources = [\"10.0.0.1\"]\n", "name"),
            (
                "[[trunk]]\nname = \"x\"\nsources = [\"10.0.0.1/40\"]\n",
                "10.0.0.1/40",
            ),
            (
                "[[trunk]]\nname = \"x\"\nsources = [\"10.0.0.1\"]\nnumbers = [\"70 10\"]\n",
                "70 10",
            ),
            (
                "[sip]\nunknown_sources = \"drop\"\n",
                "2:19: unknown variant `drop`",
            ),
        ] {
            let e = EngineConfig::parse(bad).unwrap_err();
            assert!(e.to_string().contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn a_password_from_the_environment_or_a_file_is_used_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-a-file\n").unwrap();
        let text = format!(
            "[integrations]\ndatabase_url_env = \"IVR_DB\"\n\
             [integrations.frontdesk]\napi_key_file = \"{}\"\n\
             [[trunk]]\nname = \"sbc\"\nsources = [\"10.0.0.1\"]\nusername = \"u\"\npassword_env = \"IVR_TRUNK_PW\"\n",
            file.display()
        );
        let env = |k: &str| match k {
            "IVR_TRUNK_PW" => Some("from-the-env".to_string()),
            "IVR_DB" => Some("sqlite::memory:".to_string()),
            _ => None,
        };
        let c = EngineConfig::parse_with_env(&text, &env).unwrap();
        assert_eq!(c.trunks[0].password.as_deref(), Some("from-the-env"));
        assert_eq!(
            c.integrations.frontdesk.api_key.as_deref(),
            Some("from-a-file")
        );
        assert_eq!(c.integrations.database_url, "sqlite::memory:");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("from-the-env") && !shown.contains("from-a-file"),
            "{shown}"
        );
        // A missing variable is named; no value appears in any error.
        let e = EngineConfig::parse_with_env(&text, &|_| None).unwrap_err();
        assert!(e.to_string().contains("IVR_DB"), "{e}");
        let e = EngineConfig::parse_with_env(
            "[[trunk]]\nname = \"x\"\nsources = [\"10.0.0.1\"]\nusername = \"u\"\npassword_env = \"P\"\nmax_calls = \"many\"\n",
            &|_| Some("hunter2".into()),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn the_shipped_site_sample_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/site/engine-1.toml");
        let secret = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(secret.path(), "postgres://ivr@db.example/ivr\n").unwrap();
        let text = std::fs::read_to_string(path).unwrap().replace(
            "/etc/ivr/secrets/db-url",
            &secret.path().display().to_string(),
        );
        let cfg = EngineConfig::parse(&text).unwrap();
        assert_eq!(
            cfg.integrations.database_url,
            "postgres://ivr@db.example/ivr"
        );
        assert!(!cfg.standins.puzzel && !cfg.standins.frontdesk);
    }

    #[test]
    fn the_shipped_default_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml");
        EngineConfig::load(&path).unwrap();
    }
}
