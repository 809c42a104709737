//! A minimal answering loop for transport tests, load benches and `ivr
//! serve` without a flow.

use std::sync::{Arc, Mutex};

use ivr_sip::Event;
use tokio::sync::mpsc;

use super::SipHandle;

/// Decides the SDP answer for a call; the engine's media layer implements
/// it for real calls.
pub trait AnswerSdp: Send + 'static {
    /// The answer to `offer` (or our offer when `None`); `None` refuses with 488.
    fn answer(&mut self, offer: Option<&[u8]>) -> Option<Vec<u8>>;
    /// Whether to answer the call to this Request-URI/To user, or only ring (tests of CANCEL).
    fn should_answer(&mut self, _to: &str) -> bool {
        true
    }
}

/// A fixed minimal PCMA answer, for transport tests until the SDP module is
/// wired in: it does not negotiate.
#[derive(Debug, Clone)]
pub struct FixedPcmaAnswer {
    /// Address in `c=`.
    pub ip: std::net::IpAddr,
    /// RTP port in `m=`.
    pub port: u16,
}

impl AnswerSdp for FixedPcmaAnswer {
    fn answer(&mut self, offer: Option<&[u8]>) -> Option<Vec<u8>> {
        let family = if self.ip.is_ipv4() { "IP4" } else { "IP6" };
        let dir = match offer.map(String::from_utf8_lossy) {
            Some(o) if o.contains("a=sendonly") => "recvonly",
            Some(o) if o.contains("a=inactive") => "inactive",
            _ => "sendrecv",
        };
        Some(
            format!(
                "v=0\r\no=ivr 1 1 IN {family} {ip}\r\ns=ivr\r\nc=IN {family} {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\na={dir}\r\n",
                ip = self.ip,
                port = self.port
            )
            .into_bytes(),
        )
    }
    fn should_answer(&mut self, to: &str) -> bool {
        !to.starts_with("sip:ring")
    }
}

/// Counts of what an answering loop saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AnswerStats {
    /// IncomingCall events.
    pub incoming: u64,
    /// Calls answered with 200.
    pub answered: u64,
    /// ACKs received.
    pub confirmed: u64,
    /// re-INVITEs answered.
    pub reinvites: u64,
    /// Calls ended by the peer's BYE.
    pub ended_by_peer: u64,
    /// Calls cancelled before answer.
    pub cancelled: u64,
    /// Other call ends (ACK timeout, local hangup).
    pub ended_other: u64,
}

/// Answers every call with `sdp` (after 180), answers re-INVITEs, and keeps
/// counts until the event channel closes. The hook tests and `ivr serve`
/// without a flow use.
pub async fn answer_calls(
    handle: SipHandle,
    mut events: mpsc::Receiver<Event>,
    mut sdp: impl AnswerSdp,
    stats: Arc<Mutex<AnswerStats>>,
) {
    while let Some(e) = events.recv().await {
        let bump =
            |f: fn(&mut AnswerStats)| f(&mut stats.lock().unwrap_or_else(|p| p.into_inner()));
        match e {
            Event::IncomingCall {
                call, offer, to, ..
            } => {
                bump(|s| s.incoming += 1);
                let _ = handle.ringing(call).await;
                if !sdp.should_answer(to.expose()) {
                    continue;
                }
                match sdp.answer(offer.as_deref()) {
                    Some(a) => {
                        if handle.answer(call, a).await.is_ok() {
                            bump(|s| s.answered += 1);
                        }
                    }
                    None => {
                        let _ = handle.reject(call, 488).await;
                    }
                }
            }
            Event::CallConfirmed { .. } => bump(|s| s.confirmed += 1),
            Event::ReInvite { call, offer } => match sdp.answer(offer.as_deref()) {
                Some(a) => {
                    if handle.answer_reinvite(call, a).await.is_ok() {
                        bump(|s| s.reinvites += 1);
                    }
                }
                None => {
                    let _ = handle.reject_reinvite(call, 488).await;
                }
            },
            Event::CallEnded { reason, .. } => match reason {
                ivr_sip::EndReason::RemoteBye => bump(|s| s.ended_by_peer += 1),
                ivr_sip::EndReason::Cancelled => bump(|s| s.cancelled += 1),
                _ => bump(|s| s.ended_other += 1),
            },
            _ => {}
        }
    }
}
