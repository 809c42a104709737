//! RFC 4733 telephone-events (DTMF over RTP), receive and send.
//!
//! - Payload format: RFC 4733 sec. 2.3 (event, E bit, volume, duration).
//! - Receiver rules: sec. 2.5.2. An event is identified by its RTP timestamp
//!   (the event's start, sec. 2.5.2.1); retransmitted end packets (sec. 2.5.1.4,
//!   sent three times) and duration updates carry the same timestamp and never
//!   produce a second digit. A digit is reported on the first packet seen for a
//!   new timestamp (start, update or end: any of them may be the first to arrive
//!   when packets are lost or reordered). The timestamps of recently reported
//!   events are remembered so late or reordered packets of an old event are
//!   ignored.
//! - Sender rules: sec. 2.5.1: the first packet has the marker bit; updates every
//!   packet interval with growing duration and the same timestamp; the end
//!   packet is sent three times with the final duration.

use ivr_core::Dtmf;

use crate::MediaError;

/// One RFC 4733 event block (sec. 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0-15 are DTMF keys).
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume (0 to -63 dBm0, as the positive number).
    pub volume: u8,
    /// Duration in RTP timestamp units since the event's timestamp.
    pub duration: u16,
}

/// Parses the first event block of a payload (sec. 2.3). Never panics.
pub fn parse_event(payload: &[u8]) -> Result<TelephoneEvent, MediaError> {
    let b = payload
        .get(..4)
        .ok_or(MediaError::MalformedTelephoneEvent)?;
    Ok(TelephoneEvent {
        event: b[0],
        end: b[1] & 0x80 != 0,
        volume: b[1] & 0x3F,
        duration: u16::from_be_bytes([b[2], b[3]]),
    })
}

/// Writes one event block into `out[..4]`.
pub fn write_event(ev: &TelephoneEvent, out: &mut [u8; 4]) {
    out[0] = ev.event;
    out[1] = (if ev.end { 0x80 } else { 0 }) | (ev.volume & 0x3F);
    out[2..4].copy_from_slice(&ev.duration.to_be_bytes());
}

const RECENT: usize = 8;

/// Turns received telephone-event packets into keypresses, once each.
#[derive(Debug, Clone, Default)]
pub struct DtmfReceiver {
    recent: [Option<u32>; RECENT],
    next: usize,
    /// Timestamp of the event in progress (not yet ended), if any.
    active: Option<u32>,
}

impl DtmfReceiver {
    /// A receiver with no history.
    pub fn new() -> Self {
        Self::default()
    }

    fn seen(&self, ts: u32) -> bool {
        self.recent.contains(&Some(ts))
    }

    /// Is a telephone-event in progress (audio during it is the tone; callers may mute VAD)?
    pub fn in_event(&self) -> bool {
        self.active.is_some()
    }

    /// Handles one telephone-event RTP payload with its RTP timestamp; returns
    /// the key if this packet starts a new keypress.
    pub fn handle(&mut self, rtp_ts: u32, payload: &[u8]) -> Result<Option<Dtmf>, MediaError> {
        #[allow(
            clippy::manual_is_multiple_of,
            reason = "is_multiple_of needs Rust 1.87; workspace MSRV is 1.85"
        )]
        let misaligned = payload.len() % 4 != 0;
        if misaligned {
            return Err(MediaError::MalformedTelephoneEvent);
        }
        let ev = parse_event(payload)?;
        // Multiple blocks in one payload (sec. 2.5.1.5, events packed back to back) all
        // share the packet timestamp; the first block is the one that started at it.
        let key = Dtmf::from_event_code(ev.event).ok();
        if self.seen(rtp_ts) {
            if ev.end && self.active == Some(rtp_ts) {
                self.active = None;
            }
            return Ok(None);
        }
        self.recent[self.next] = Some(rtp_ts);
        self.next = (self.next + 1) % RECENT;
        self.active = if ev.end { None } else { Some(rtp_ts) };
        Ok(key)
    }
}

/// Produces the telephone-event payloads for sending one key (sec. 2.5.1).
#[derive(Debug, Clone)]
pub struct DtmfSender {
    key: Dtmf,
    /// Total tone length in RTP units.
    total: u32,
    /// Units per packet.
    step: u32,
    /// Duration already sent.
    sent: u32,
    ends_left: u8,
    started: bool,
    volume: u8,
}

/// One packet the [`DtmfSender`] wants sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// Marker bit (first packet of the event only).
    pub marker: bool,
    /// The 4-byte payload.
    pub payload: [u8; 4],
    /// Whether this is one of the three final end packets.
    pub end: bool,
}

impl DtmfSender {
    /// Sends `key` for `duration_units` RTP units (e.g. 800 = 100 ms at 8 kHz),
    /// one packet per `step_units` (the ptime in RTP units).
    pub fn new(key: Dtmf, duration_units: u16, step_units: u16) -> Self {
        DtmfSender {
            key,
            total: u32::from(duration_units.max(step_units)),
            step: u32::from(step_units.max(1)),
            sent: 0,
            ends_left: 3,
            started: false,
            volume: 10,
        }
    }

    /// The next packet, or `None` when the event is over (after the third end packet).
    /// All packets of the event carry the same RTP timestamp (the event start).
    pub fn next_packet(&mut self) -> Option<DtmfPacket> {
        if self.ends_left == 0 {
            return None;
        }
        let marker = !self.started;
        self.started = true;
        if self.sent < self.total {
            self.sent = (self.sent + self.step).min(self.total);
        }
        let end = self.sent >= self.total;
        if end {
            self.ends_left -= 1;
        }
        let mut payload = [0u8; 4];
        write_event(
            &TelephoneEvent {
                event: self.key.event_code(),
                end,
                volume: self.volume,
                duration: self.sent.min(0xFFFF) as u16,
            },
            &mut payload,
        );
        Some(DtmfPacket {
            marker,
            payload,
            end,
        })
    }

    /// RTP units the event occupies on the timeline (the audio timestamp must
    /// advance by this much after the event).
    pub fn total_units(&self) -> u32 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ev: u8, end: bool, dur: u16) -> [u8; 4] {
        let mut b = [0u8; 4];
        write_event(
            &TelephoneEvent {
                event: ev,
                end,
                volume: 10,
                duration: dur,
            },
            &mut b,
        );
        b
    }

    #[test]
    fn start_updates_and_three_ends_give_one_digit() {
        let mut r = DtmfReceiver::new();
        assert_eq!(
            r.handle(1000, &block(5, false, 160)).unwrap(),
            Some(Dtmf::D5)
        );
        assert!(r.in_event());
        assert_eq!(r.handle(1000, &block(5, false, 320)).unwrap(), None);
        for _ in 0..3 {
            assert_eq!(r.handle(1000, &block(5, true, 800)).unwrap(), None);
        }
        assert!(!r.in_event());
        // Same key again is a new press: new timestamp.
        assert_eq!(
            r.handle(3000, &block(5, false, 160)).unwrap(),
            Some(Dtmf::D5)
        );
    }

    #[test]
    fn lost_start_still_reports_once_and_late_packets_of_old_events_are_ignored() {
        let mut r = DtmfReceiver::new();
        // Only the end packets arrive.
        assert_eq!(
            r.handle(1000, &block(9, true, 800)).unwrap(),
            Some(Dtmf::D9)
        );
        assert_eq!(r.handle(1000, &block(9, true, 800)).unwrap(), None);
        assert_eq!(
            r.handle(5000, &block(1, false, 160)).unwrap(),
            Some(Dtmf::D1)
        );
        // A reordered update of the first event arrives late.
        assert_eq!(r.handle(1000, &block(9, false, 480)).unwrap(), None);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let mut r = DtmfReceiver::new();
        assert!(r.handle(0, &[1, 2, 3]).is_err());
        assert!(r.handle(0, &[]).is_err());
        assert_eq!(
            r.handle(0, &block(200, false, 1)).unwrap(),
            None,
            "non-DTMF event codes are not keys"
        );
    }

    #[test]
    fn sender_marks_first_grows_duration_and_repeats_end_three_times() {
        let mut s = DtmfSender::new(Dtmf::Hash, 800, 160);
        let pkts: Vec<_> = std::iter::from_fn(|| s.next_packet()).collect();
        assert_eq!(pkts.len(), 5 + 2);
        assert!(pkts[0].marker && pkts[1..].iter().all(|p| !p.marker));
        let durs: Vec<u16> = pkts
            .iter()
            .map(|p| parse_event(&p.payload).unwrap().duration)
            .collect();
        assert_eq!(durs, [160, 320, 480, 640, 800, 800, 800]);
        assert_eq!(pkts.iter().filter(|p| p.end).count(), 3);
        assert!(pkts.iter().all(|p| p.payload[0] == 11));
        // Round trip through a receiver: one '#'.
        let mut r = DtmfReceiver::new();
        let keys: Vec<_> = pkts
            .iter()
            .filter_map(|p| r.handle(42, &p.payload).unwrap())
            .collect();
        assert_eq!(keys, [Dtmf::Hash]);
    }
}
