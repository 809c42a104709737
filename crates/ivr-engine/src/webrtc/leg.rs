//! The browser's media leg: a str0m [`Rtc`] in RTP mode and its UDP socket.
//!
//! The leg answers the browser's offer (ICE-lite on a host candidate per
//! `[webrtc] candidate_ips` address, each its own socket,
//! DTLS-SRTP, Opus preferred, G.711 when that is all the browser offers,
//! RFC 4733 telephone-event (8 kHz) for
//! `RTCDTMFSender`), then carries RTP both ways: packets the browser sent,
//! decrypted by the Rtc, are rebuilt as plain RTP datagrams for the call
//! core; the core's RTP datagrams are parsed and written into the Rtc's
//! send stream, which encrypts and sends them. RTCP is the Rtc's own.
//!
//! The Rtc is sans-IO: [`Leg::handle_datagram`] and [`Leg::handle_timeout`]
//! take the time; [`Leg::poll`] sends what it has to send and hands the
//! events to the caller, returning the next deadline.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ivr_media::rtp::{build_rtp, parse_rtp};
use ivr_media::{Codec, MediaParams};
use str0m::change::SdpOffer;
use str0m::format::{Codec as RtcCodec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

use super::WebRtcError;

/// The address the call core believes its peer is at. The core's media
/// session only takes RTP from, and sends to, its negotiated address; on a
/// browser leg the transport is the Rtc's, so incoming packets are handed
/// in as from this address and the core's `to` is ignored. (TEST-NET-1,
/// RFC 5737: it is never a real peer.)
pub const CORE_PEER: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)), 9);

/// Payload types we put in our codec configuration; the answer keeps the
/// offer's numbers for the same codecs (RFC 3264 sec. 6.1).
const PT_TE_8K: u8 = 126;

/// The browser's offer answered, before the leg runs.
pub struct Negotiated {
    /// The SDP answer for the browser.
    pub answer_sdp: String,
    /// The codec's name, for the page.
    pub codec_name: String,
    /// The core's media parameters.
    pub params: MediaParams,
    rtc: Rtc,
}

impl Negotiated {
    /// The running leg on `sockets` (the ones the candidates name, in order).
    pub fn into_leg(self, sockets: Vec<UdpSocket>) -> Leg {
        let sockets = sockets
            .into_iter()
            .map(|s| {
                let local = s
                    .local_addr()
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
                (s, local)
            })
            .collect();
        Leg {
            rtc: self.rtc,
            sockets,
            mid: None,
            next_seq: None,
            rebuilt: vec![0; 1500],
            recv: vec![0; 2000],
        }
    }
}

/// Answers the browser's `offer` with a host candidate at each of `addrs`.
///
/// # Errors
/// [`WebRtcError::BadOffer`] (unparsable, no audio, no common codec),
/// [`WebRtcError::NoPort`] (no address, or a candidate address is refused).
pub fn answer(offer: &str, addrs: &[SocketAddr], now: Instant) -> Result<Negotiated, WebRtcError> {
    let mut cfg = RtcConfig::new()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_pcma(true, false)
        .enable_pcmu(true, false);
    // telephone-event at 8 kHz only: offered both, Chromium sends its keys
    // on the 8 kHz one even with Opus (seen in tests/softphone_browser.rs),
    // and with one in the answer every browser uses the same. The events'
    // clock does not matter to the receiver (RFC 4733 sec. 2.5: code, end
    // bit and the event's timestamp identify a key).
    cfg.codec_config().add_config(
        PT_TE_8K.into(),
        None,
        RtcCodec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::default(),
    );
    let mut rtc = cfg.build(now);
    if addrs.is_empty() {
        return Err(WebRtcError::NoPort("no candidate address".into()));
    }
    for &addr in addrs {
        let candidate =
            Candidate::host(addr, "udp").map_err(|e| WebRtcError::NoPort(e.to_string()))?;
        if rtc.add_local_candidate(candidate).is_none() {
            return Err(WebRtcError::NoPort(format!("candidate {addr} refused")));
        }
    }
    let offer =
        SdpOffer::from_sdp_string(offer).map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| WebRtcError::BadOffer(e.to_string()))?;
    let answer_sdp = answer.to_sdp_string();
    let (codec, pt, te) = pick(&answer_sdp)
        .ok_or_else(|| WebRtcError::BadOffer("no Opus or G.711 audio in common".into()))?;
    tracing::debug!(?codec, pt, telephone_event = ?te, "browser leg negotiated");
    Ok(Negotiated {
        codec_name: match codec {
            Codec::Opus => "opus".into(),
            other => format!("{other:?}").to_uppercase(),
        },
        params: MediaParams {
            codec,
            payload_type: pt,
            telephone_event_pt: te,
            ptime: Duration::from_millis(20),
            remote_rtp: CORE_PEER,
            remote_rtcp: None,
        },
        answer_sdp,
        rtc,
    })
}

/// The codec the browser will send (the first format of the answer's audio
/// line: RFC 3264 sec. 6.1, the answerer's preference order), its payload
/// type, and the telephone-event payload type (the 8 kHz one, else the one
/// at the codec's rate).
fn pick(answer: &str) -> Option<(Codec, u8, Option<u8>)> {
    let mut formats: Vec<u8> = Vec::new();
    let mut maps: Vec<(u8, String, u32)> = Vec::new();
    let mut in_audio = false;
    for line in answer.lines() {
        let line = line.trim();
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ") && !m.starts_with("audio 0 ");
            if in_audio && formats.is_empty() {
                formats = m
                    .split_whitespace()
                    .skip(3)
                    .filter_map(|f| f.parse().ok())
                    .collect();
            }
        } else if let (true, Some(rest)) = (in_audio, line.strip_prefix("a=rtpmap:")) {
            let mut it = rest.split_whitespace();
            let pt = it.next().and_then(|p| p.parse().ok());
            let enc = it.next().unwrap_or("");
            let mut enc_it = enc.split('/');
            let name = enc_it.next().unwrap_or("").to_ascii_lowercase();
            let rate = enc_it.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            if let Some(pt) = pt {
                maps.push((pt, name, rate));
            }
        }
    }
    let (codec, pt, rate) = formats.iter().find_map(|f| {
        let (_, name, rate) = maps.iter().find(|(p, _, _)| p == f)?;
        let codec = match name.as_str() {
            "opus" => Codec::Opus,
            "pcma" => Codec::Pcma,
            "pcmu" => Codec::Pcmu,
            _ => return None,
        };
        Some((codec, *f, *rate))
    })?;
    let tes = || maps.iter().filter(|(_, n, _)| n == "telephone-event");
    let te = tes()
        .find(|(_, _, r)| *r == 8000)
        .or_else(|| tes().find(|(_, _, r)| *r == rate))
        .map(|(p, _, _)| *p);
    Some((codec, pt, te))
}

/// What the leg tells the call.
#[derive(Debug)]
pub enum LegEvent<'a> {
    /// ICE and DTLS are up: media may flow (the call's "ACK").
    Connected,
    /// An RTP datagram from the browser, decrypted (from [`CORE_PEER`]).
    Rtp(&'a [u8]),
    /// The browser is gone (ICE disconnected, DTLS closed, or the Rtc failed).
    Gone(&'static str),
}

/// The running leg.
pub struct Leg {
    rtc: Rtc,
    /// One socket per host candidate, with its address.
    sockets: Vec<(UdpSocket, SocketAddr)>,
    mid: Option<Mid>,
    /// Extended sequence number of our next packet (from the core's 16-bit one).
    next_seq: Option<u64>,
    rebuilt: Vec<u8>,
    recv: Vec<u8>,
}

impl Leg {
    /// Writes one of the core's RTP datagrams into the send stream (dropped
    /// before the browser's audio track is known or when malformed).
    pub fn send_rtp(&mut self, bytes: &[u8], now: Instant) {
        let (Some(mid), Ok(p)) = (self.mid, parse_rtp(bytes)) else {
            return;
        };
        let seq = match self.next_seq {
            Some(prev) => {
                // The core counts up by one per packet: extend across wraps.
                let ext = (prev & !0xffff) | u64::from(p.sequence);
                if ext < prev {
                    ext + 0x1_0000
                } else {
                    ext
                }
            }
            None => u64::from(p.sequence),
        };
        self.next_seq = Some(seq + 1);
        let mut api = self.rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(mid, None) else {
            return;
        };
        let w = RtpWrite::new(
            Pt::from(p.payload_type),
            SeqNo::from(seq),
            p.timestamp,
            now,
            p.payload.to_vec(),
        )
        .marker(p.marker);
        tx.write_rtp(w);
    }

    /// Feeds a datagram received on socket `socket` (as [`Leg::recv`] said).
    pub fn handle_datagram(&mut self, n: usize, from: SocketAddr, socket: usize, now: Instant) {
        let (Some(bytes), Some((_, local))) = (self.recv.get(..n), self.sockets.get(socket)) else {
            return;
        };
        let Ok(r) = Receive::new(Protocol::Udp, from, *local, bytes) else {
            return;
        };
        let _ = self.rtc.handle_input(Input::Receive(now, r));
    }

    /// The Rtc's deadline came.
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = self.rtc.handle_input(Input::Timeout(now));
    }

    /// Ends the peer connection (the browser sees DTLS close).
    pub fn close(&mut self) {
        self.rtc.disconnect();
    }

    /// Whether the Rtc is still alive.
    pub fn is_alive(&self) -> bool {
        self.rtc.is_alive()
    }

    /// Sends what the Rtc has to send, hands its events to `on_event`, and
    /// returns its next deadline (None: closed).
    pub fn poll(&mut self, mut on_event: impl FnMut(LegEvent<'_>)) -> Option<Instant> {
        loop {
            if !self.rtc.is_alive() {
                return None;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => return Some(at),
                Ok(Output::Transmit(t)) => {
                    // From the candidate's own socket; a full socket buffer
                    // drops the datagram, as the network could.
                    let socket = self
                        .sockets
                        .iter()
                        .find(|(_, a)| *a == t.source)
                        .or(self.sockets.first());
                    if let Some((s, _)) = socket {
                        let _ = s.try_send_to(&t.contents, t.destination);
                    }
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => on_event(LegEvent::Connected),
                    Event::MediaAdded(m) if m.kind == MediaKind::Audio => {
                        self.mid.get_or_insert(m.mid);
                    }
                    Event::RtpPacket(p) => {
                        let h = &p.header;
                        if let Ok(n) = build_rtp(
                            &mut self.rebuilt,
                            *h.payload_type,
                            h.marker,
                            h.sequence_number,
                            h.timestamp,
                            *h.ssrc,
                            &p.payload,
                        ) {
                            on_event(LegEvent::Rtp(&self.rebuilt[..n]));
                        }
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        on_event(LegEvent::Gone("ice"))
                    }
                    Event::Closed => on_event(LegEvent::Gone("browser")),
                    _ => {}
                },
                Err(e) => {
                    tracing::debug!(error = %e, "browser leg failed");
                    self.rtc.disconnect();
                    on_event(LegEvent::Gone("failed"));
                    return None;
                }
            }
        }
    }

    /// Waits for the next datagram on any of the sockets: its length, its
    /// source and which socket (the bytes stay in the leg for
    /// [`Leg::handle_datagram`]).
    pub async fn recv(&mut self) -> std::io::Result<(usize, SocketAddr, usize)> {
        let Leg { sockets, recv, .. } = self;
        std::future::poll_fn(|cx| {
            for (i, (s, _)) in sockets.iter().enumerate() {
                let mut buf = tokio::io::ReadBuf::new(recv.as_mut_slice());
                match s.poll_recv_from(cx, &mut buf) {
                    std::task::Poll::Ready(Ok(from)) => {
                        return std::task::Poll::Ready(Ok((buf.filled().len(), from, i)))
                    }
                    std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                    std::task::Poll::Pending => {}
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_offers_a_host_candidate_per_configured_address() {
        let now = Instant::now();
        // A browser's offer (str0m as the client).
        let mut browser = RtcConfig::new().build(now);
        browser.add_local_candidate(
            Candidate::host("127.0.0.1:40000".parse().unwrap(), "udp").unwrap(),
        );
        let mut change = browser.sdp_api();
        change.add_media(
            MediaKind::Audio,
            str0m::media::Direction::SendRecv,
            None,
            None,
            None,
        );
        let (offer, _) = change.apply().unwrap();
        let addrs: Vec<SocketAddr> = vec![
            "127.0.0.1:41000".parse().unwrap(),
            "127.0.0.2:41000".parse().unwrap(),
        ];
        let n = answer(&offer.to_sdp_string(), &addrs, now).unwrap();
        let candidates: Vec<&str> = n
            .answer_sdp
            .lines()
            .filter(|l| l.starts_with("a=candidate"))
            .collect();
        assert_eq!(candidates.len(), 2, "{}", n.answer_sdp);
        assert!(candidates[0].contains("127.0.0.1 41000"), "{candidates:?}");
        assert!(candidates[1].contains("127.0.0.2 41000"), "{candidates:?}");
        assert_eq!(n.codec_name, "opus");
        assert!(matches!(
            answer(&offer.to_sdp_string(), &[], now),
            Err(WebRtcError::NoPort(_))
        ));
    }

    #[test]
    fn the_answer_picks_the_first_audio_codec_and_a_telephone_event() {
        let answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 110 126\r\n\
            a=rtpmap:111 opus/48000/2\r\na=rtpmap:110 telephone-event/48000\r\n\
            a=rtpmap:126 telephone-event/8000\r\n";
        assert_eq!(pick(answer), Some((Codec::Opus, 111, Some(126))));
        let only_48k = "m=audio 9 UDP/TLS/RTP/SAVPF 111 110\r\na=rtpmap:111 opus/48000/2\r\n\
            a=rtpmap:110 telephone-event/48000\r\n";
        assert_eq!(pick(only_48k), Some((Codec::Opus, 111, Some(110))));
        let g711 = "m=audio 9 UDP/TLS/RTP/SAVPF 8 126\r\na=rtpmap:8 PCMA/8000\r\n\
            a=rtpmap:126 telephone-event/8000\r\n";
        assert_eq!(pick(g711), Some((Codec::Pcma, 8, Some(126))));
        assert_eq!(
            pick("m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n"),
            None
        );
        assert_eq!(
            pick("m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"),
            None
        );
    }
}
