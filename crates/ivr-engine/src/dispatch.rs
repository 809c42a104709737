//! The dispatcher: turns SIP events into per-call tasks.
//!
//! One task reads the SIP event queue. A new INVITE is refused at once
//! (503 while draining or when too many set-ups are in flight, 404 without
//! a route), or its set-up ([`CallSetup`], in the engine [`call::accept`]:
//! RTP sockets, SDP, 180 and 200, the call's task) runs on a task of its
//! own, so other calls' ACKs, keys, re-INVITEs and BYEs, and new INVITEs,
//! keep flowing while one call is being set up. The dispatcher itself
//! awaits nothing but SIP commands (refusals), which the SIP driver serves
//! at once.
//!
//! ```text
//! SIP events --> dispatcher --spawn--> set-up (call::accept) --Accepted--> dispatcher
//!                    |  per call: SettingUp(queue) | Live(inputs)
//!                    +--(CALL_INPUT_QUEUE)--> call task
//! ```
//!
//! Queues and what happens when full:
//! - events for a call whose set-up is in progress are kept for it, in
//!   order, and handed over before anything newer once the set-up succeeds
//!   (dropped with it when it fails: the call is refused). Keys beyond
//!   [`CALL_INPUT_QUEUE`] held for one call are dropped (logged), like keys
//!   to a live call whose queue is full; other events are always kept (at
//!   most an ACK, a re-INVITE, a transfer result and the end per call).
//! - events to a live call ([`CALL_INPUT_QUEUE`]): `try_send`; a key that
//!   does not fit is dropped (logged; a caller pressing keys faster than the
//!   call handles them is not lost signalling), while call-ending events and
//!   re-INVITEs are handed to a short-lived task that waits for room.
//! - set-ups in flight: at most [`Dispatcher::max_setups`] (the engine
//!   passes its call limit, which the SIP endpoint enforces as well);
//!   beyond it an INVITE gets 503.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ivr_core::{CallId, Pii};
use ivr_flow::FlowStore;
use ivr_sip::{CallHandle, Event};
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::call::{self, Accepted, CallInput, CallShared, Incoming, Refused, CALL_INPUT_QUEUE};
use crate::metrics::Metrics;
use crate::sip::SipHandle;

/// The future of one call's set-up.
pub type SetupFuture = Pin<Box<dyn Future<Output = Result<Accepted, Refused>> + Send>>;

/// Sets up an answered call: media, 180/200 and the call's task.
pub trait CallSetup: Send + Sync + 'static {
    /// Starts setting up `inc`; the dispatcher runs the future on a task of
    /// its own.
    fn accept(&self, inc: Incoming) -> SetupFuture;
}

/// The engine's set-up: [`call::accept`].
pub struct AcceptCalls(pub Arc<CallShared>);

impl CallSetup for AcceptCalls {
    fn accept(&self, inc: Incoming) -> SetupFuture {
        Box::pin(call::accept(self.0.clone(), inc))
    }
}

/// What the dispatcher needs.
pub struct Dispatcher {
    /// SIP commands (refusals).
    pub sip: SipHandle,
    /// Routing of the called number.
    pub flows: Arc<FlowStore>,
    /// How a routed call is set up.
    pub setup: Arc<dyn CallSetup>,
    /// Counters (refused calls).
    pub metrics: Arc<Metrics>,
    /// Set: new INVITEs get 503 (graceful shutdown).
    pub draining: Arc<AtomicBool>,
    /// Set-ups in flight before new INVITEs get 503.
    pub max_setups: usize,
    /// The `[[trunk]]` settings, for the numbers each trunk may reach and
    /// its media latching (empty: any number, `[media] latch`).
    pub trunks: Arc<Vec<crate::config::TrunkConfig>>,
}

enum Control {
    /// Hang up every call (now, and any whose set-up finishes later); answer
    /// with the call tasks once no set-up is in flight.
    Finish(oneshot::Sender<Vec<JoinHandle<()>>>),
}

/// The running dispatcher.
pub struct Dispatch {
    ctl: mpsc::Sender<Control>,
    setting_up: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

/// Starts the dispatcher on `events`.
pub fn spawn(d: Dispatcher, events: mpsc::Receiver<Event>) -> Dispatch {
    let (ctl, ctl_rx) = mpsc::channel(4);
    let setting_up = Arc::new(AtomicUsize::new(0));
    let state = Loop {
        d,
        calls: HashMap::new(),
        setups: JoinSet::new(),
        setup_calls: HashMap::new(),
        setting_up: setting_up.clone(),
        tasks: Vec::new(),
        terminating: false,
        finish: None,
    };
    let task = tokio::spawn(state.run(events, ctl_rx));
    Dispatch {
        ctl,
        setting_up,
        task,
    }
}

impl Dispatch {
    /// Calls whose set-up is in flight (not yet counted as active calls).
    pub fn setting_up(&self) -> usize {
        self.setting_up.load(Ordering::Relaxed)
    }

    /// Tells every call to hang up, including calls whose set-up finishes
    /// later, and returns the call tasks once no set-up is in flight. SIP
    /// events keep flowing to the calls meanwhile.
    pub async fn finish(&self) -> Vec<JoinHandle<()>> {
        let (tx, rx) = oneshot::channel();
        if self.ctl.send(Control::Finish(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Stops the dispatcher (set-ups in flight are abandoned).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Where a call is.
enum Slot {
    /// Its set-up runs; events wait here, in order.
    SettingUp {
        queued: VecDeque<CallInput>,
        ended: bool,
    },
    /// Its task runs.
    Live(mpsc::Sender<CallInput>),
}

struct Loop {
    d: Dispatcher,
    calls: HashMap<u64, Slot>,
    setups: JoinSet<Result<Accepted, Refused>>,
    setup_calls: HashMap<tokio::task::Id, (CallHandle, CallId)>,
    setting_up: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
    terminating: bool,
    finish: Option<oneshot::Sender<Vec<JoinHandle<()>>>>,
}

impl Loop {
    async fn run(mut self, mut events: mpsc::Receiver<Event>, mut ctl: mpsc::Receiver<Control>) {
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(ev) => self.on_event(ev).await,
                    None => return, // the SIP service stopped
                },
                Some(done) = self.setups.join_next_with_id(), if !self.setups.is_empty() => {
                    self.on_setup_done(done).await;
                }
                Some(c) = ctl.recv() => match c {
                    Control::Finish(reply) => {
                        self.terminating = true;
                        for slot in self.calls.values() {
                            if let Slot::Live(tx) = slot {
                                forward(tx.clone(), CallInput::Terminate);
                            }
                        }
                        self.finish = Some(reply);
                    }
                },
            }
            self.setting_up.store(self.setups.len(), Ordering::Relaxed);
            if self.setups.is_empty() {
                if let Some(reply) = self.finish.take() {
                    let _ = reply.send(std::mem::take(&mut self.tasks));
                }
            }
        }
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::IncomingCall {
                call,
                from,
                to,
                offer,
                source,
                transport,
                trunk,
                ..
            } => {
                if self.d.draining.load(Ordering::Relaxed) || self.terminating {
                    self.refuse(call, 503).await;
                    return;
                }
                if self.setups.len() >= self.d.max_setups {
                    tracing::warn!("too many call set-ups in flight; 503");
                    self.refuse(call, 503).await;
                    return;
                }
                let called = call::user_part(to.expose());
                let trunk = trunk.and_then(|t| self.d.trunks.iter().find(|c| c.name == t));
                // A number the trunk may not reach is answered exactly as a
                // number with no route: a scan learns nothing from the difference.
                if trunk.is_some_and(|t| !t.permits(&called)) {
                    tracing::info!(
                        trunk = trunk.map(|t| t.name.as_str()),
                        "called number not open to this trunk; 404"
                    );
                    self.refuse(call, 404).await;
                    return;
                }
                if trunk.is_some_and(|t| !t.transport.admits(transport)) {
                    tracing::info!(
                        trunk = trunk.map(|t| t.name.as_str()),
                        ?transport,
                        "trunk takes calls over TLS only; 403"
                    );
                    self.refuse(call, 403).await;
                    return;
                }
                let Some(route) = self.d.flows.route(&called) else {
                    tracing::info!("no municipality for the called number; 404");
                    self.refuse(call, 404).await;
                    return;
                };
                // From the OS CSPRNG: one call's reference says nothing
                // about the next one's.
                let call_ref = CallId::from_u64(ivr_sip::ids::secure_u64());
                let inc = Incoming {
                    handle: call,
                    call_ref: call_ref.clone(),
                    route,
                    calling: Pii::new(call::user_part(from.expose())),
                    called: Pii::new(called),
                    offer,
                    source,
                    transport,
                    latch: trunk.and_then(|t| t.latch),
                    srtp: trunk.and_then(|t| t.srtp),
                    trunk_nets: trunk.map(|t| t.sources.clone()).unwrap_or_default(),
                };
                self.calls.insert(
                    call.0,
                    Slot::SettingUp {
                        queued: VecDeque::new(),
                        ended: false,
                    },
                );
                let id = self.setups.spawn(self.d.setup.accept(inc)).id();
                self.setup_calls.insert(id, (call, call_ref));
            }
            Event::CallConfirmed { call, sdp } => self.for_call(call, CallInput::Confirmed(sdp)),
            Event::Dtmf { call, digit, .. } => self.for_call(call, CallInput::Dtmf(digit)),
            Event::ReInvite { call, offer } => {
                if self.calls.contains_key(&call.0) {
                    self.for_call(call, CallInput::ReInvite(offer));
                } else {
                    let _ = self.d.sip.reject_reinvite(call, 481).await;
                }
            }
            Event::TransferResult {
                call,
                success,
                status,
            } => self.for_call(call, CallInput::TransferResult { success, status }),
            Event::CallEnded { call, reason } => match self.calls.get_mut(&call.0) {
                Some(Slot::SettingUp { queued, ended }) => {
                    queued.push_back(CallInput::Ended(reason));
                    *ended = true;
                }
                Some(Slot::Live(_)) => {
                    if let Some(Slot::Live(tx)) = self.calls.remove(&call.0) {
                        forward(tx, CallInput::Ended(reason));
                    }
                }
                None => {}
            },
            _ => {}
        }
    }

    async fn refuse(&self, call: CallHandle, status: u16) {
        self.d.metrics.call_rejected();
        let _ = self.d.sip.reject(call, status).await;
    }

    fn for_call(&mut self, call: CallHandle, input: CallInput) {
        match self.calls.get_mut(&call.0) {
            Some(Slot::SettingUp { queued, .. }) => {
                let keys = queued
                    .iter()
                    .filter(|i| matches!(i, CallInput::Dtmf(_)))
                    .count();
                if matches!(input, CallInput::Dtmf(_)) && keys >= CALL_INPUT_QUEUE {
                    tracing::warn!("call still being set up holds too many keys; key dropped");
                } else {
                    queued.push_back(input);
                }
            }
            Some(Slot::Live(tx)) => deliver(tx, input),
            None => {}
        }
    }

    async fn on_setup_done(
        &mut self,
        done: Result<(tokio::task::Id, Result<Accepted, Refused>), tokio::task::JoinError>,
    ) {
        let (id, result) = match done {
            Ok((id, r)) => (id, r),
            Err(e) => {
                tracing::error!(error = %e, "call set-up failed (task panicked or was cancelled)");
                (e.id(), Err(Refused(500)))
            }
        };
        let Some((call, call_ref)) = self.setup_calls.remove(&id) else {
            return;
        };
        let slot = self.calls.remove(&call.0);
        match result {
            Ok(acc) => {
                tracing::info!(call = %call_ref, "call answered");
                let mut ended = false;
                if let Some(Slot::SettingUp { queued, ended: e }) = slot {
                    ended = e;
                    for input in queued {
                        deliver(&acc.inputs, input);
                    }
                }
                if self.terminating && !ended {
                    forward(acc.inputs.clone(), CallInput::Terminate);
                }
                if !ended {
                    self.calls.insert(call.0, Slot::Live(acc.inputs));
                }
                self.tasks.retain(|t| !t.is_finished());
                self.tasks.push(acc.task);
            }
            Err(Refused(status)) => {
                tracing::info!(call = %call_ref, status, "call refused");
                self.refuse(call, status).await;
            }
        }
    }
}

/// Delivers a SIP event to a live call (queue policy in the module docs).
fn deliver(tx: &mpsc::Sender<CallInput>, input: CallInput) {
    match tx.try_send(input) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(i)) => match i {
            CallInput::Dtmf(_) => tracing::warn!("call input queue full; key dropped"),
            other => forward(tx.clone(), other),
        },
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

fn forward(tx: mpsc::Sender<CallInput>, input: CallInput) {
    if let Err(mpsc::error::TrySendError::Full(i)) = tx.try_send(input) {
        tokio::spawn(async move {
            let _ = tx.send(i).await;
        });
    }
}
