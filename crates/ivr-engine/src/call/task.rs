//! The call's tokio task: a thin loop around [`CallCore`]. It owns the RTP
//! and RTCP sockets and the clock, feeds the core datagrams, SIP events and
//! finished jobs, performs what the core asks (send, SIP commands, jobs,
//! metrics) and sleeps until the core's next timeout. No decision is made
//! here.

use std::sync::Arc;
use std::time::Instant;

use ivr_sip::CallHandle;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::core::{CallCore, CallEvent, Done, Input, Output, SipEvent};
use super::jobs::Workers;
use super::{CallInput, CallShared, WORK_QUEUE};
use crate::records::{CallRecordRow, ProgressWriter};

/// One call's sockets and queues.
pub struct CallTask {
    /// What every call shares.
    pub shared: Arc<CallShared>,
    /// The SIP dialog.
    pub handle: CallHandle,
    /// RTP socket.
    pub rtp: UdpSocket,
    /// RTCP socket.
    pub rtcp: UdpSocket,
    /// SIP events from the dispatcher.
    pub inputs: mpsc::Receiver<CallInput>,
}

/// What woke the loop.
enum Wake {
    Rtp(usize, std::net::SocketAddr),
    Rtcp(usize, std::net::SocketAddr),
    Input(Option<CallInput>),
    Done(Option<Done>),
    Timer,
}

impl CallTask {
    /// Runs the call to its end (its record written, the call counted as over).
    pub async fn run(mut self, mut core: CallCore) {
        let (done_tx, mut done_rx) = mpsc::channel(WORK_QUEUE);
        let workers = Workers::for_call(&self.shared, &core, done_tx);
        let (mut buf, mut buf2) = (vec![0u8; 2048], vec![0u8; 1500]);
        // The record as the call goes (written off the call's loop).
        let mut progress = ProgressWriter::new(self.shared.records.clone());
        let call_ref = core.call_ref().to_string();
        let mut published = 0u64;
        // When the last RTP packet left (packet gaps for `/metrics`).
        let mut last_rtp: Option<Instant> = None;
        loop {
            // 1. Everything the core has to say, up to its next deadline.
            let wake = loop {
                match core.poll_output(Instant::now()) {
                    Output::Transmit(t) => {
                        let rtp = t.kind == ivr_media::PacketKind::Rtp;
                        let sock = if rtp { &self.rtp } else { &self.rtcp };
                        // A full socket buffer drops the packet, as the network could.
                        let _ = sock.try_send_to(t.bytes, t.to);
                        if rtp {
                            // How late against the pacer's deadline, and the gap since the last.
                            let sent = Instant::now();
                            let late = core
                                .last_packet_due()
                                .map(|due| sent.saturating_duration_since(due));
                            let gap = last_rtp.map(|l| sent.saturating_duration_since(l));
                            last_rtp = Some(sent);
                            self.shared.metrics.rtp_sent(late, gap);
                        }
                    }
                    Output::Sip(cmd) => {
                        if let Some(ev) = workers.sip(self.handle, cmd).await {
                            core.handle_input(Input::Sip(ev), Instant::now());
                        }
                    }
                    Output::Job(job) => {
                        if let Some(done) = workers.start(job) {
                            core.handle_input(Input::Done(done), Instant::now());
                        }
                    }
                    Output::Event(CallEvent::Progress(row)) => progress.send(row),
                    Output::Event(e) => observe(&self.shared, e),
                    Output::Finished(row) => {
                        // The last snapshots land before the final row.
                        progress.flush().await;
                        return finish(&self.shared, *row).await;
                    }
                    Output::Timeout(at) => break at,
                }
            };
            // The live page follows the flow (copied only when it moved).
            if core.flow_moves() != published {
                published = core.flow_moves();
                self.shared.live.update(&call_ref, &core.live_view());
            }
            // 2. Wait for input or the deadline.
            let w = tokio::select! {
                r = self.rtp.recv_from(&mut buf) => r.map_or(Wake::Timer, |(n, a)| Wake::Rtp(n, a)),
                r = self.rtcp.recv_from(&mut buf2) => r.map_or(Wake::Timer, |(n, a)| Wake::Rtcp(n, a)),
                i = self.inputs.recv() => Wake::Input(i),
                d = done_rx.recv() => Wake::Done(d),
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => Wake::Timer,
            };
            let now = Instant::now();
            let input = match w {
                Wake::Rtp(n, from) => Input::Rtp {
                    bytes: buf.get(..n).unwrap_or_default(),
                    from,
                },
                Wake::Rtcp(n, from) => Input::Rtcp {
                    bytes: buf2.get(..n).unwrap_or_default(),
                    from,
                },
                Wake::Input(i) => Input::Sip(sip_event(i)),
                Wake::Done(Some(d)) => Input::Done(d),
                Wake::Done(None) | Wake::Timer => Input::Timeout,
            };
            core.handle_input(input, now);
        }
    }
}

/// Counts or publishes a call's event (SIP and browser legs alike).
pub(crate) fn observe(shared: &CallShared, e: CallEvent) {
    match e {
        CallEvent::Turn(tt) => {
            let ms = |d: Option<std::time::Duration>| d.map_or(-1, |d| d.as_millis() as i64);
            shared.metrics.observe_turn(tt.latency());
            tracing::debug!(
                turn_ms = tt.latency().as_millis() as u64,
                stt_ms = ms(tt.stt_stage()),
                tts_ms = ms(tt.tts_stage()),
                pacing_ms = ms(tt.pacing_stage()),
                eager = tt.eager,
                "turn latency"
            );
            shared.turns.publish(*tt);
        }
        CallEvent::Eager(o) => shared.metrics.eager(o),
        CallEvent::CallerTurn(input) => shared.metrics.caller_turn(input),
        CallEvent::Greeting(after) => shared.metrics.greeting(after),
        CallEvent::BargeIn => tracing::debug!("barge-in: prompt flushed"),
        CallEvent::ForeignMediaDropped => shared.metrics.foreign_media_dropped(),
        CallEvent::SrtpRefused => shared.metrics.srtp_refused(),
        CallEvent::Progress(_) => {}
    }
}

/// Writes a finished call's record and stops counting it (SIP and browser legs alike).
pub(crate) async fn finish(shared: &CallShared, row: CallRecordRow) {
    tracing::info!(
        outcome = row.outcome,
        steps = row.steps.len(),
        turns = row.turns,
        "call finished"
    );
    if let Some(records) = &shared.records {
        if let Err(e) = records.insert(&row).await {
            tracing::warn!(error = %e, "call record not written");
        }
    }
    shared.live.end(&row.call_ref);
    // Last: the call stops counting as active only once its record is
    // committed, so a graceful shutdown (which waits for no active calls)
    // cannot exit before the record is written.
    shared.metrics.call_ended(&row.municipality, &row.outcome);
}

/// A SIP event from the dispatcher as the core's input (`None`: the engine is gone).
pub(crate) fn sip_event(i: Option<CallInput>) -> SipEvent {
    match i {
        Some(CallInput::Confirmed(sdp)) => SipEvent::Confirmed(sdp),
        Some(CallInput::Dtmf(k)) => SipEvent::Dtmf(k),
        Some(CallInput::ReInvite(offer)) => SipEvent::ReInvite(offer),
        // Status 0: the subscription ended without one.
        Some(CallInput::TransferResult { success, status }) => SipEvent::TransferResult {
            success,
            status: (status != 0).then_some(status),
        },
        Some(CallInput::Ended(reason)) => SipEvent::Ended(reason),
        Some(CallInput::Terminate) => SipEvent::Terminate,
        None => SipEvent::Gone,
    }
}
