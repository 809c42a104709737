//! SDP for one call, as pure functions over `ivr-sip`'s SDP module: the
//! answer to the INVITE (or our offer for an offerless INVITE), the answer
//! carried by the ACK, answers to re-INVITEs, and the media parameters the
//! negotiation settles.

use std::time::Duration;

use ivr_media::MediaParams;
use ivr_sip::sdp::{self, LocalMedia, LocalSession, Negotiated, SdpConfig, SessionDescription};

/// What the 200 OK to an INVITE carries, and what the call keeps of it.
#[derive(Debug)]
pub struct Answered {
    /// The SDP body of the 200 OK (our answer, or our offer).
    pub body: Vec<u8>,
    /// The negotiated media, when the INVITE carried an offer.
    pub negotiated: Option<Negotiated>,
    /// Our offer, when the INVITE carried none (the answer comes in the ACK).
    pub our_offer: Option<SessionDescription>,
    /// Our session description's versioning (for re-INVITE answers).
    pub session: LocalSession,
}

/// Answers an INVITE's offer, or makes our offer for an offerless INVITE.
///
/// # Errors
/// The SIP status to reject the INVITE with (488 when nothing can be agreed).
pub fn answer_invite(
    offer: Option<&[u8]>,
    local: &LocalMedia,
    cfg: &SdpConfig,
) -> Result<Answered, u16> {
    let mut session = LocalSession::new();
    match offer {
        Some(offer) => {
            let offer = SessionDescription::parse_bytes(offer).map_err(|e| e.sip_status())?;
            let (answer, n) = sdp::answer(&offer, local, cfg).map_err(|e| e.sip_status())?;
            let answer = session.stamp(answer);
            Ok(Answered {
                body: answer.to_string().into_bytes(),
                negotiated: Some(n),
                our_offer: None,
                session,
            })
        }
        None => {
            let offer = session.stamp(sdp::offer(local, cfg));
            Ok(Answered {
                body: offer.to_string().into_bytes(),
                negotiated: None,
                our_offer: Some(offer),
                session,
            })
        }
    }
}

/// The media agreed by the answer in the ACK to our offer (offerless INVITE,
/// RFC 3264 sec. 5, RFC 3261 sec. 13.2.1); `None` when it is missing or unusable.
pub fn accept_ack(
    our_offer: Option<&SessionDescription>,
    body: Option<&[u8]>,
) -> Option<Negotiated> {
    let (offer, body) = (our_offer?, body?);
    let answer = SessionDescription::parse_bytes(body).ok()?;
    sdp::accept_answer(offer, &answer).ok()
}

/// How to answer a re-INVITE.
#[derive(Debug)]
pub enum ReInviteAnswer {
    /// 200 with this body; the media changes to `negotiated` when set.
    Accept {
        /// Our SDP.
        body: Vec<u8>,
        /// The new negotiation (None: an offerless re-INVITE, nothing changes yet).
        negotiated: Option<Box<Negotiated>>,
    },
    /// Refuse with this status (488: the new offer has nothing in common).
    Reject(u16),
}

/// Answers a re-INVITE (hold, resume, new address, session refresh) keeping
/// the codec in use when the new offer still lists it.
pub fn answer_reinvite(
    offer: Option<&[u8]>,
    local: &LocalMedia,
    cfg: &SdpConfig,
    current: Option<&Negotiated>,
    session: &mut LocalSession,
) -> ReInviteAnswer {
    let Some(offer) = offer else {
        // Offerless re-INVITE: offer our current session again.
        let sd = session
            .last()
            .cloned()
            .unwrap_or_else(|| sdp::offer(local, cfg));
        return ReInviteAnswer::Accept {
            body: sd.to_string().into_bytes(),
            negotiated: None,
        };
    };
    let answer = SessionDescription::parse_bytes(offer)
        .ok()
        .and_then(|o| match current {
            Some(cur) => sdp::answer_reoffer(&o, local, cfg, cur).ok(),
            None => sdp::answer(&o, local, cfg).ok(),
        });
    match answer {
        Some((sd, n)) => ReInviteAnswer::Accept {
            body: session.stamp(sd).to_string().into_bytes(),
            negotiated: Some(Box::new(n)),
        },
        None => ReInviteAnswer::Reject(488),
    }
}

/// The media codec of a negotiated SDP codec.
pub fn media_codec(c: sdp::Codec) -> ivr_media::Codec {
    match c {
        sdp::Codec::Pcma => ivr_media::Codec::Pcma,
        sdp::Codec::Pcmu => ivr_media::Codec::Pcmu,
        sdp::Codec::G722 => ivr_media::Codec::G722,
    }
}

/// The media session's parameters from a negotiation.
pub fn media_params(n: &Negotiated) -> MediaParams {
    MediaParams {
        codec: media_codec(n.codec),
        payload_type: n.payload_type,
        telephone_event_pt: n.telephone_event.map(|t| t.payload_type),
        ptime: Duration::from_millis(u64::from(n.ptime_ms)),
        remote_rtp: n.remote_rtp,
        remote_rtcp: Some(n.remote_rtcp),
    }
}
