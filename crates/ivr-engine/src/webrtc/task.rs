//! A browser call's task: the same thin loop as a SIP call's
//! ([`crate::call::task`]) around the same [`CallCore`], with the media leg
//! a str0m peer connection ([`Leg`]) instead of RTP/RTCP sockets, and the
//! "SIP" side the console API: the leg's `Connected` is the call's ACK,
//! a hang-up in the page is its BYE, and the core's `Hangup` closes the
//! peer connection (the page sees the state turn `ended`).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

use super::leg::{Leg, LegEvent, CORE_PEER};
use super::PhoneState;
use crate::call::core::{CallCore, Input, Output, SipCommand, SipEvent};
use crate::call::jobs::Workers;
use crate::call::task::{finish, observe, sip_event};
use crate::call::{CallInput, CallShared, WORK_QUEUE};
use crate::records::ProgressWriter;

/// One browser call's leg and queues.
pub struct WebRtcTask {
    /// What every call shares.
    pub shared: Arc<CallShared>,
    /// The browser's media leg.
    pub leg: Leg,
    /// Hang-up from the page (and engine shutdown).
    pub inputs: mpsc::Receiver<CallInput>,
    /// What the page reads.
    pub state: Arc<Mutex<PhoneState>>,
    /// The flow debugger's events.
    pub log: Arc<super::debugger::DebugLog>,
}

enum Wake {
    Datagram(usize, std::net::SocketAddr, usize),
    Input(Option<CallInput>),
    Done(Option<crate::call::core::Done>),
    Timer,
}

impl WebRtcTask {
    fn set(&self, f: impl FnOnce(&mut PhoneState)) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let before = (s.state.clone(), s.transfer_refused.clone());
        f(&mut s);
        if (s.state.clone(), s.transfer_refused.clone()) != before {
            self.log.push(serde_json::json!({
                "kind": "state",
                "state": s.state,
                "codec": s.codec,
                "ended_by": s.ended_by,
                "transfer_refused": s.transfer_refused,
            }));
        }
    }

    /// Runs the call to its end (record written, counted as over).
    pub async fn run(mut self, mut core: CallCore) {
        let (done_tx, mut done_rx) = mpsc::channel(WORK_QUEUE);
        let workers = Workers::for_call(&self.shared, &core, done_tx);
        // The record as the call goes, as a SIP call's (marked as a browser call).
        let mut progress = ProgressWriter::new(self.shared.records.clone());
        let call_ref = core.call_ref().to_string();
        let mut published = 0u64;
        let mut ended_by: Option<&'static str> = None;
        loop {
            let now = Instant::now();
            // 1. The core's outputs up to its deadline.
            let core_at = loop {
                match core.poll_output(Instant::now()) {
                    Output::Transmit(t) => {
                        // RTCP is the peer connection's own (RFC 8834 reports it makes).
                        if t.kind == ivr_media::PacketKind::Rtp {
                            self.leg.send_rtp(t.bytes, now);
                        }
                    }
                    Output::Sip(cmd) => match cmd {
                        SipCommand::Hangup => {
                            ended_by.get_or_insert("hangup");
                            self.leg.close();
                        }
                        SipCommand::Refer { department, .. } => {
                            // A browser call cannot be transferred: the flow
                            // takes its failed-transfer path.
                            self.set(|s| s.transfer_refused = Some(department));
                            core.handle_input(
                                Input::Sip(SipEvent::TransferResult {
                                    success: false,
                                    status: None,
                                }),
                                Instant::now(),
                            );
                        }
                        SipCommand::AnswerReInvite(_) | SipCommand::RejectReInvite(_) => {}
                    },
                    Output::Job(job) => {
                        if let Some(done) = workers.start(job) {
                            core.handle_input(Input::Done(done), Instant::now());
                        }
                    }
                    Output::Event(crate::call::core::CallEvent::Progress(row)) => {
                        progress.send(row);
                    }
                    Output::Event(e) => observe(&self.shared, e),
                    Output::Finished(row) => {
                        self.leg.close();
                        for e in core.take_debug() {
                            self.log.push_core(e);
                        }
                        self.set(|s| {
                            s.state = "ended".into();
                            s.ended_by = Some(ended_by.unwrap_or("hangup").into());
                        });
                        self.log.end();
                        progress.flush().await;
                        return finish(&self.shared, *row).await;
                    }
                    Output::Timeout(at) => break at,
                }
            };
            for e in core.take_debug() {
                self.log.push_core(e);
            }
            if core.flow_moves() != published {
                published = core.flow_moves();
                let view = core.live_view();
                self.shared.live.update(&call_ref, &view);
                self.set(|s| {
                    s.step = view.step.clone();
                    s.last_intent = view.last_intent.clone();
                });
            }
            // 2. The leg's outputs; its events are the core's inputs.
            let mut fed = false;
            let mut connected = false;
            let mut gone: Option<&'static str> = None;
            let leg_at = self.leg.poll(|ev| match ev {
                LegEvent::Connected => connected = true,
                LegEvent::Rtp(bytes) => {
                    fed = true;
                    core.handle_input(
                        Input::Rtp {
                            bytes,
                            from: CORE_PEER,
                        },
                        Instant::now(),
                    );
                }
                LegEvent::Gone(why) => gone = Some(why),
            });
            if connected {
                fed = true;
                self.set(|s| s.state = "connected".into());
                core.handle_input(Input::Sip(SipEvent::Confirmed(None)), Instant::now());
            }
            if let Some(why) = gone.or(leg_at.is_none().then_some("browser")) {
                if ended_by.is_none() {
                    ended_by = Some(why);
                    fed = true;
                    core.handle_input(
                        Input::Sip(SipEvent::Ended(ivr_sip::EndReason::RemoteBye)),
                        Instant::now(),
                    );
                }
            }
            if fed {
                continue;
            }
            let wake = leg_at.map_or(core_at, |l| l.min(core_at));
            // 3. Wait for a datagram, the page, a job, or the deadline.
            let w = tokio::select! {
                r = self.leg.recv(), if self.leg.is_alive() => r.map_or(Wake::Timer, |(n, a, i)| Wake::Datagram(n, a, i)),
                i = self.inputs.recv() => Wake::Input(i),
                d = done_rx.recv() => Wake::Done(d),
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => Wake::Timer,
            };
            let now = Instant::now();
            match w {
                Wake::Datagram(n, from, i) => self.leg.handle_datagram(n, from, i, now),
                Wake::Input(i) => {
                    if matches!(i, Some(CallInput::Ended(_)) | None) {
                        ended_by.get_or_insert("browser");
                    }
                    core.handle_input(Input::Sip(sip_event(i)), now);
                }
                Wake::Done(Some(d)) => core.handle_input(Input::Done(d), now),
                Wake::Done(None) | Wake::Timer => {
                    if self.leg.is_alive() {
                        self.leg.handle_timeout(now);
                    }
                    core.handle_input(Input::Timeout, now);
                }
            }
        }
    }
}
