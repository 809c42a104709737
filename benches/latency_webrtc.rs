//! The latency harness's browser caller (`--transport webrtc|both`): the
//! same turns as the SIP callers, placed as the console's softphone places
//! them, so a browser call's turn latency is measured with the same rule,
//! stages and table as a phone call's.
//!
//! - Signalling is the engine's real console API: the harness logs in as an
//!   operator (`POST /api/v1/session`: session cookie + CSRF token, as the
//!   console page and `crates/ivr-engine/tests/console_api.rs` do) and each
//!   call is `POST /api/v1/calls/webrtc` with the municipality, the kind's
//!   phone number (the flow that asks the kind's question) and the SDP
//!   offer; the hang-up is `DELETE /api/v1/calls/webrtc/{call_ref}`.
//! - The peer connection is str0m in the client role (full ICE, the
//!   controlling agent, against the engine's ICE-lite host candidate;
//!   DTLS-SRTP; RTP mode), one UDP socket per call, driven on the callers'
//!   runtime with time passed in.
//! - Audio is what a browser sends: Opus from libopus (the `opus` crate, the
//!   project's binding) at 48 kHz mono, VoIP, 32 kbit/s VBR with in-band FEC
//!   (WebRTC's defaults), 20 ms packets on real-time deadlines. The
//!   utterances are the speech set's wideband versions
//!   (`tests/vectors/speech/wav/`, 16 kHz: a browser's microphone is not
//!   narrowband; the SIP callers send the same utterances' G.711 versions),
//!   the English CPR number synthesised by the engine's voice as for SIP.
//!   Silence is encoded digital silence.
//! - End of speech and reply are found as for SIP: the last 20 ms frame
//!   within 40 dB of the loudest; the first packet from the engine after
//!   it whose Opus payload decodes (at 16 kHz) above the same RMS threshold.
//!   The engine's per-turn timings are matched by the engine's address (the
//!   answer's host candidate, which is the call's RTP address in the core).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ivr_core::Pcm;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

use super::{rms, turn_over, Harness, TurnResult, PTIME, QUIET, REPLY_RMS};

/// Samples per 20 ms at 48 kHz (the browser's Opus clock and rate).
const FRAME_48K: usize = 960;
/// The browser's Opus bit rate (WebRTC's default for mono voice).
const BROWSER_BITRATE: i32 = 32_000;

/// An utterance as a browser sends it: Opus packets, the ground-truth end of
/// speech, and a packet of encoded silence.
pub(crate) struct BrowserSpeech {
    /// The 48 kHz samples the packets encode (padding included), kept to
    /// encode each call's slightly different copy ([`BrowserSpeech::varied`]).
    samples: Vec<i16>,
    packets: Vec<Vec<u8>>,
    silence: Vec<u8>,
    /// Index of the packet carrying the last speech frame.
    pub(crate) last_speech_packet: usize,
    /// RMS of the loudest frame / 100.
    pub(crate) threshold_rms: f64,
}

impl BrowserSpeech {
    /// Length in ms.
    pub(crate) fn duration_ms(&self) -> usize {
        self.packets.len() * 20
    }

    /// The same utterance with one sample in its middle one step louder,
    /// encoded again: no two calls send bit-identical speech (no real
    /// microphone does), so a worker still holding an earlier call's
    /// encoding of the clip never skips the encoder. `variant` picks the
    /// sample. Inaudible; the end of speech stays where it was.
    pub(crate) fn varied(&self, variant: usize) -> BrowserSpeech {
        let mut samples = self.samples.clone();
        let middle = FRAME_48K * self.last_speech_packet / 2 + variant % (8 * FRAME_48K);
        if let Some(s) = samples.get_mut(middle) {
            *s = s.saturating_add(1);
        }
        let mut out = encode(samples, self.threshold_rms);
        out.last_speech_packet = self.last_speech_packet;
        out
    }
}

fn browser_encoder() -> opus::Encoder {
    let mut e = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
        .expect("libopus encoder");
    e.set_bitrate(opus::Bitrate::Bits(BROWSER_BITRATE))
        .expect("opus bitrate");
    e.set_vbr(true).expect("opus vbr");
    e.set_inband_fec(true).expect("opus fec");
    e
}

/// `pcm` (any rate) with 150 ms of silence either side, as a browser sends it.
pub(crate) fn browser_speech(pcm: &Pcm) -> BrowserSpeech {
    let pcm48 = ivr_core::resample::resample(pcm, 48_000)
        .expect("resample to 48 kHz")
        .samples;
    let pad = 48 * 150;
    let mut samples = vec![0i16; pad];
    samples.extend_from_slice(&pcm48);
    samples.extend(std::iter::repeat_n(0, pad));
    let peak = samples.chunks_exact(FRAME_48K).map(rms).fold(0.0, f64::max);
    encode(samples, peak / 100.0) // 40 dB below the loudest frame
}

/// Opus packets of `samples` (48 kHz) as a running browser encoder makes
/// them, and the last frame above `threshold` RMS.
fn encode(samples: Vec<i16>, threshold: f64) -> BrowserSpeech {
    let frames: Vec<&[i16]> = samples.chunks_exact(FRAME_48K).collect();
    let last = frames
        .iter()
        .rposition(|f| rms(f) > threshold)
        .expect("the utterance has speech");
    let mut enc = browser_encoder();
    let mut buf = [0u8; 1500];
    // A microphone's encoder has been running before the caller speaks.
    for _ in 0..10 {
        let _ = enc.encode(&[0i16; FRAME_48K], &mut buf);
    }
    let packets = frames
        .iter()
        .map(|f| {
            let n = enc.encode(f, &mut buf).expect("opus encode");
            buf[..n].to_vec()
        })
        .collect();
    let n = enc
        .encode(&[0i16; FRAME_48K], &mut buf)
        .expect("opus encode");
    BrowserSpeech {
        samples,
        packets,
        silence: buf[..n].to_vec(),
        last_speech_packet: last,
        threshold_rms: threshold,
    }
}

/// A speech set file's wideband version (`tests/vectors/speech/wav/<id>.wav`).
pub(crate) fn load_wideband(id: &str) -> (Pcm, String) {
    let rel = format!("tests/vectors/speech/wav/{id}.wav");
    let path = super::root().join(&rel);
    let mut r = hound::WavReader::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the speech test set is in git)", path.display()));
    let rate = r.spec().sample_rate;
    let samples: Vec<i16> = r.samples::<i16>().map(|s| s.expect("wav sample")).collect();
    (Pcm::new(rate, samples), rel)
}

/// The operator's session on the engine's console API.
pub(crate) struct Console {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
}

impl Console {
    /// Logs in as `user` at `http` (the engine's HTTP listener).
    pub(crate) async fn login(
        http: SocketAddr,
        user: &str,
        password: &str,
    ) -> Result<Self, String> {
        let client = reqwest::Client::new();
        let base = format!("http://{http}");
        let r = client
            .post(format!("{base}/api/v1/session"))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("login: {}", r.status()));
        }
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .ok_or("login: no session cookie")?
            .to_string();
        let me: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
        let csrf = me["csrf_token"]
            .as_str()
            .ok_or("login: no CSRF token")?
            .to_string();
        Ok(Console {
            http: client,
            base,
            cookie,
            csrf,
        })
    }

    /// Places a browser call: (call reference, SDP answer).
    async fn place(&self, m: &str, number: &str, offer: &str) -> Result<(String, String), String> {
        let r = self
            .http
            .post(format!("{}/api/v1/calls/webrtc", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&serde_json::json!({"municipality": m, "number": number, "sdp": offer}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status();
        let body: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("POST /api/v1/calls/webrtc: {status} {body}"));
        }
        match (body["call_ref"].as_str(), body["sdp"].as_str()) {
            (Some(c), Some(s)) => Ok((c.to_string(), s.to_string())),
            _ => Err(format!("POST /api/v1/calls/webrtc: {body}")),
        }
    }

    /// Hangs up from the page's side.
    async fn hang_up(&self, call_ref: &str) {
        let _ = self
            .http
            .delete(format!("{}/api/v1/calls/webrtc/{call_ref}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .send()
            .await;
    }
}

/// The answer's Opus payload type and the engine's host candidate.
fn from_answer(answer: &str) -> Option<(u8, SocketAddr)> {
    let mut pt = None;
    let mut cand = None;
    for line in answer.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            let mut it = rest.split_whitespace();
            let p = it.next().and_then(|p| p.parse().ok());
            if it
                .next()
                .is_some_and(|e| e.to_ascii_lowercase().starts_with("opus/"))
            {
                pt = pt.or(p);
            }
        } else if let Some(rest) = line.strip_prefix("a=candidate:") {
            // foundation component transport priority address port typ host
            let f: Vec<&str> = rest.split_whitespace().collect();
            if f.len() >= 6 && f[2].eq_ignore_ascii_case("udp") {
                if let (Ok(ip), Ok(port)) = (f[4].parse::<IpAddr>(), f[5].parse::<u16>()) {
                    cand = cand.or(Some(SocketAddr::new(ip, port)));
                }
            }
        }
    }
    Some((pt?, cand?))
}

/// One browser call's peer connection and socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    buf: Vec<u8>,
}

/// What the peer connection reported while polled.
#[derive(Default)]
struct Polled {
    connected: bool,
    gone: Option<&'static str>,
    /// Opus payloads received (payload type, bytes).
    rtp: Vec<(u8, Vec<u8>)>,
}

impl Peer {
    /// Sends what the Rtc has to send; returns its next deadline.
    fn poll(&mut self, out: &mut Polled) -> Option<Instant> {
        loop {
            if !self.rtc.is_alive() {
                out.gone.get_or_insert("closed");
                return None;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => return Some(at),
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => out.connected = true,
                    Event::RtpPacket(p) => {
                        out.rtp.push((*p.header.payload_type, p.payload.to_vec()))
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        out.gone.get_or_insert("ice disconnected");
                    }
                    Event::Closed => {
                        out.gone.get_or_insert("closed by the engine");
                    }
                    _ => {}
                },
                Err(e) => {
                    out.gone.get_or_insert("peer connection failed");
                    eprintln!("latency: browser leg: {e}");
                    self.rtc.disconnect();
                    return None;
                }
            }
        }
    }

    fn send(&mut self, pt: u8, seq: u64, ts: u32, marker: bool, payload: &[u8], now: Instant) {
        let mut api = self.rtc.direct_api();
        if let Some(tx) = api.stream_tx_by_mid(self.mid, None) {
            tx.write_rtp(
                RtpWrite::new(Pt::from(pt), SeqNo::from(seq), ts, now, payload.to_vec())
                    .marker(marker),
            );
        }
    }
}

impl Harness {
    /// One browser call of kind `kind`: placed through the console API,
    /// then as [`Harness::call_inner`]: silence until the prompts are over,
    /// the utterance, silence until the reply; hung up from the page's side.
    pub(crate) async fn call_webrtc(&self, kind: usize) -> TurnResult {
        let failed = |why: String| TurnResult::failed(kind, why);
        let Some(console) = self.console.as_ref() else {
            return failed("no console session (--transport webrtc)".into());
        };
        let k = &super::KINDS[kind];
        let m = k.municipality;
        let socket =
            match UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await {
                Ok(s) => s,
                Err(e) => return failed(format!("UDP socket: {e}")),
            };
        let local = socket.local_addr().expect("socket address");
        let now = Instant::now();
        let mut rtc = RtcConfig::new()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .build(now);
        let Some(_) = Candidate::host(local, "udp")
            .ok()
            .and_then(|c| rtc.add_local_candidate(c))
        else {
            return failed("local candidate refused".into());
        };
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let Some((offer, pending)) = change.apply() else {
            return failed("no SDP offer".into());
        };
        let offer: SdpOffer = offer;
        let (call_ref, answer) = match console.place(m, k.called, &offer.to_sdp_string()).await {
            Ok(a) => a,
            Err(e) => return failed(e),
        };
        let Some((pt, engine_addr)) = from_answer(&answer) else {
            console.hang_up(&call_ref).await;
            return failed(format!("answer without Opus or a host candidate: {answer}"));
        };
        let accepted = SdpAnswer::from_sdp_string(&answer)
            .map_err(|e| e.to_string())
            .and_then(|a| {
                rtc.sdp_api()
                    .accept_answer(pending, a)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = accepted {
            console.hang_up(&call_ref).await;
            return failed(format!("answer refused: {e}"));
        }
        let mut peer = Peer {
            rtc,
            socket,
            local,
            mid,
            buf: vec![0; 2000],
        };
        self.active.fetch_add(1, Ordering::Relaxed);
        let mut r = self.browser_media(&mut peer, pt, kind).await;
        self.active.fetch_sub(1, Ordering::Relaxed);
        console.hang_up(&call_ref).await;
        peer.rtc.disconnect();
        let mut flushed = Polled::default();
        let _ = peer.poll(&mut flushed);
        self.match_timing(&mut r, engine_addr).await;
        r
    }

    /// The media of a browser call (see [`Harness::call_webrtc`]).
    async fn browser_media(&self, peer: &mut Peer, pt: u8, kind: usize) -> TurnResult {
        #[derive(Clone, Copy, PartialEq)]
        enum Phase {
            Connecting,
            Listening,
            Speaking(usize),
            Waiting,
        }
        let variant = super::CALL_VARIANT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let speech = &self.browser_speech[kind].varied(variant);
        let mut decoder =
            opus::Decoder::new(16_000, opus::Channels::Mono).expect("libopus decoder");
        let mut pcm = [0i16; 960];
        let start = Instant::now();
        let mut phase = Phase::Connecting;
        let mut next_send = start;
        let (mut seq, mut ts) = (1u64, 0u32);
        let mut marker = true;
        let mut heard_bot = false;
        let mut last_bot_audio = start;
        let mut speech_end_at: Option<Instant> = None;
        let mut reply_at: Option<Instant> = None;
        let mut overlap = 0usize;
        let mut active_at_end = 0usize;
        let error = loop {
            // 1. The next packet, when due (the poll below puts it on the wire).
            let now = Instant::now();
            let mut sent_speech = None;
            if phase != Phase::Connecting && now >= next_send {
                let payload: &[u8] = match phase {
                    Phase::Listening
                        if heard_bot && now.duration_since(last_bot_audio) >= QUIET =>
                    {
                        phase = Phase::Speaking(0);
                        marker = true;
                        &speech.packets[0]
                    }
                    Phase::Speaking(i) => &speech.packets[i],
                    _ => &speech.silence,
                };
                let payload = payload.to_vec();
                peer.send(pt, seq, ts, marker, &payload, now);
                marker = false;
                seq += 1;
                ts = ts.wrapping_add(FRAME_48K as u32);
                next_send += PTIME;
                if let Phase::Speaking(i) = phase {
                    sent_speech = Some(i);
                    phase = if i + 1 < speech.packets.len() {
                        Phase::Speaking(i + 1)
                    } else {
                        Phase::Waiting
                    };
                }
            }
            // 2. What the peer connection has to send and to say.
            let mut polled = Polled::default();
            let rtc_at = peer.poll(&mut polled);
            let at = Instant::now();
            if sent_speech == Some(speech.last_speech_packet) {
                speech_end_at = Some(at);
                active_at_end = self.active.load(Ordering::Relaxed);
            }
            if polled.connected && phase == Phase::Connecting {
                phase = Phase::Listening;
                next_send = at;
            }
            for (p, payload) in polled.rtp.drain(..) {
                if p != pt {
                    continue;
                }
                let n = decoder.decode(&payload, &mut pcm, false).unwrap_or(0);
                if rms(&pcm[..n]) <= REPLY_RMS {
                    continue;
                }
                match phase {
                    Phase::Connecting | Phase::Listening => {
                        heard_bot = true;
                        last_bot_audio = at;
                    }
                    _ => match speech_end_at {
                        Some(end) if at >= end => {
                            reply_at.get_or_insert(at);
                        }
                        _ => overlap += 1,
                    },
                }
            }
            if let Some(why) = polled.gone {
                break Some(format!("browser leg ended: {why}"));
            }
            // 3. Bounds: connected in 10 s, greeting over in 30 s, reply in 10 s.
            if phase == Phase::Connecting && at > start + Duration::from_secs(10) {
                break Some("ICE/DTLS not connected in 10 s".to_string());
            }
            if let Some(end) = turn_over(start, at, speech_end_at, reply_at) {
                break end;
            }
            // 4. Wait for a datagram, the Rtc's deadline or the next packet's.
            let mut wake = rtc_at.unwrap_or(at + PTIME);
            if phase != Phase::Connecting {
                wake = wake.min(next_send);
            }
            if wake <= Instant::now() {
                let _ = peer.rtc.handle_input(Input::Timeout(Instant::now()));
                continue;
            }
            tokio::select! {
                r = peer.socket.recv_from(&mut peer.buf) => {
                    if let Ok((n, from)) = r {
                        let now = Instant::now();
                        if let Ok(rcv) = Receive::new(Protocol::Udp, from, peer.local, &peer.buf[..n]) {
                            let _ = peer.rtc.handle_input(Input::Receive(now, rcv));
                        }
                    }
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {
                    let _ = peer.rtc.handle_input(Input::Timeout(Instant::now()));
                }
            }
        };
        let speech_end_at = speech_end_at.unwrap_or(start);
        TurnResult {
            kind,
            concurrency: 0,
            active_at_speech_end: active_at_end,
            counted: false,
            total: reply_at.map(|r| r.duration_since(speech_end_at)),
            engine: None,
            speech_end_at,
            reply_at,
            overlap_packets: overlap,
            error: error.or_else(|| {
                (overlap > 0).then(|| format!("{overlap} packets of prompt audio while speaking"))
            }),
        }
    }
}
