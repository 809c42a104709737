//! What the call core asks of the world, performed: its jobs on the
//! engine's workers (synthesis on blocking threads with `Arc<dyn
//! TextToSpeech>`, recognition on the shared [`SpeechPool`], the meaning of
//! a caller's words on the [`EmbedPool`], integration requests on
//! [`Services`]; each answer goes back to the call's task as a [`Done`]
//! tagged with the job's id) and its SIP commands on the dialog.

use std::sync::{mpsc as std_mpsc, Arc, Mutex};

use ivr_core::{CallId, Lang, Speech};
use ivr_flow::semantic::EncodeError;
use ivr_tts::{SpeechStream, TextToSpeech};
use tokio::sync::mpsc;

use ivr_sip::msg::HeaderName;
use ivr_sip::CallHandle;

use super::core::{Done, Job, JobId, SipCommand, SipEvent};
use crate::services::{Caller, Services};
use crate::sip::SipHandle;
use crate::speech::{SpeechPool, Timed};
use crate::turns::SttTiming;

/// Where one call's jobs run.
pub struct Workers {
    /// Speech out.
    pub tts: Arc<dyn TextToSpeech>,
    /// Speech in.
    pub stt: SpeechPool,
    /// Integrations.
    pub services: Services,
    /// The call (for integration requests).
    pub call_ref: CallId,
    /// Its municipality.
    pub municipality: String,
    /// Where answers go.
    pub done: mpsc::Sender<Done>,
    /// SIP commands.
    pub sip: SipHandle,
    /// The end-of-turn model (None: not loaded).
    pub smart_turn: Option<Arc<ivr_turn::SmartTurn>>,
    /// Where callers' words are embedded.
    pub embed: EmbedPool,
}

impl Workers {
    /// The workers of one call (SIP and browser legs alike): the engine's
    /// shared speech, integrations and models, answering on `done`.
    pub(crate) fn for_call(
        shared: &super::CallShared,
        core: &super::core::CallCore,
        done: mpsc::Sender<Done>,
    ) -> Self {
        Workers {
            tts: shared.tts.clone(),
            stt: shared.stt.clone(),
            services: shared.services.clone(),
            call_ref: core.call_ref().clone(),
            municipality: core.municipality().to_string(),
            done,
            sip: shared.sip.clone(),
            smart_turn: shared.turn_models.smart_turn.clone(),
            embed: shared.embed.clone(),
        }
    }

    /// Starts a job. An answer known at once (a speculative recognition with
    /// no idle worker) is returned instead of sent.
    pub fn start(&self, job: Job) -> Option<Done> {
        match job {
            Job::Recognize {
                id,
                pcm,
                choice,
                hints,
                eager: true,
                cancel,
            } => match self.stt.recognize_if_idle(pcm, choice, hints, cancel) {
                Some(recognition) => self.recognition(id, recognition),
                None => return Some(Done::Declined { id }),
            },
            Job::Recognize {
                id,
                pcm,
                choice,
                hints,
                eager: false,
                ..
            } => {
                let pool = self.stt.clone();
                self.recognition(id, async move { pool.recognize(pcm, choice, hints).await });
            }
            Job::Synthesize {
                id,
                speech,
                lang,
                rate,
            } => {
                let (tts, tx) = (self.tts.clone(), self.done.clone());
                tokio::task::spawn_blocking(move || {
                    background();
                    synthesize(&*tts, id, &speech, lang, rate, |d| {
                        tx.blocking_send(d).is_ok()
                    })
                });
            }
            Job::EndOfTurn { id, pcm } => {
                let Some(model) = self.smart_turn.clone() else {
                    return Some(Done::EndOfTurn { id, complete: None });
                };
                let tx = self.done.clone();
                tokio::task::spawn_blocking(move || {
                    background();
                    let complete = model
                        .predict(&pcm)
                        .inspect_err(|e| tracing::warn!(error = %e, "end-of-turn model failed"))
                        .ok();
                    let _ = tx.blocking_send(Done::EndOfTurn { id, complete });
                });
            }
            Job::Embed { id, wanted } => {
                let tx = self.done.clone();
                let started = self.embed.run(Box::new(move || {
                    let meaning = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        wanted.make()
                    }))
                    .unwrap_or_else(|_| Err(EncodeError("the encoder panicked".into())))
                    .inspect_err(
                        |e| tracing::warn!(error = %e, "caller's words not embedded; the flow goes by the words"),
                    );
                    let _ = tx.blocking_send(Done::Meaning { id, meaning });
                }));
                if !started {
                    return Some(Done::Meaning {
                        id,
                        meaning: Err(EncodeError("no embedding thread".into())),
                    });
                }
            }
            Job::PlayFile { id, path, rate } => {
                let (tts, tx) = (self.tts.clone(), self.done.clone());
                tokio::task::spawn_blocking(move || {
                    background();
                    let pcm = match rate {
                        Some(r) => tts.prompt_file_at(&path, r),
                        None => tts.prompt_file(&path),
                    }
                    .inspect_err(|e| tracing::warn!(error = %e, "audio prompt not loaded"))
                    .ok();
                    let _ = tx.blocking_send(Done::Audio {
                        id,
                        pcm,
                        last: true,
                    });
                });
            }
            Job::Invoke {
                id,
                request,
                lang,
                at,
            } => {
                let (services, tx) = (self.services.clone(), self.done.clone());
                let (call_ref, municipality) = (self.call_ref.clone(), self.municipality.clone());
                tokio::spawn(async move {
                    let who = Caller {
                        call_ref: &call_ref,
                        municipality: &municipality,
                        lang,
                    };
                    let response = services.execute(who, request, at).await;
                    let _ = tx.send(Done::Response { id, response }).await;
                });
            }
        }
        None
    }

    /// Performs a SIP command; a REFER that cannot be sent comes back as its outcome.
    pub async fn sip(&self, handle: CallHandle, cmd: SipCommand) -> Option<SipEvent> {
        let sip = &self.sip;
        match cmd {
            SipCommand::Hangup => {
                let _ = sip.hangup(handle).await;
            }
            SipCommand::AnswerReInvite(body) => {
                let _ = sip.answer_reinvite(handle, body).await;
            }
            SipCommand::RejectReInvite(status) => {
                let _ = sip.reject_reinvite(handle, status).await;
            }
            SipCommand::Refer {
                target,
                department,
                context,
                intent,
                lang,
            } => {
                let who = Caller {
                    call_ref: &self.call_ref,
                    municipality: &self.municipality,
                    lang,
                };
                let headers = match self.services.transfer_headers(
                    who,
                    &department,
                    &context,
                    intent,
                ) {
                    Ok(h) => h
                        .headers
                        .into_iter()
                        .map(|(n, v)| (HeaderName::parse(&n), v))
                        .collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "transfer context not built; transferring without it");
                        Vec::new()
                    }
                };
                if let Err(e) = sip.refer(handle, target, headers).await {
                    tracing::warn!(error = %e, "REFER not sent");
                    return Some(SipEvent::TransferResult {
                        success: false,
                        status: None,
                    });
                }
            }
        }
        None
    }

    fn recognition(
        &self,
        id: JobId,
        recognition: impl std::future::Future<Output = Timed> + Send + 'static,
    ) {
        let tx = self.done.clone();
        tokio::spawn(async move {
            let t = recognition.await;
            let stt = SttTiming {
                queued: t.queued,
                processing: t.processing,
                recognised: t.result.is_ok(),
                passes: 1,
                encoder_reused: t.encoder_reused,
            };
            let _ = tx
                .send(Done::Transcript {
                    id,
                    result: t.result,
                    stt,
                })
                .await;
        });
    }
}

/// Synthesises a `Say` (blocking), sentence by sentence so the first
/// sentence plays while the rest is made: [`Speech::Static`] through the
/// cache (static prompts are pre-rendered, so cache hits),
/// [`Speech::Personal`] only through the non-caching path, so nothing
/// rendered from the caller's data reaches the prompt cache. The audio
/// comes at `rate` (the call's codec rate; `None`: the output rate). `emit`
/// gets each piece and returns false when the call is gone (synthesis stops).
pub fn synthesize(
    tts: &dyn TextToSpeech,
    id: JobId,
    speech: &Speech,
    lang: Lang,
    rate: Option<u32>,
    mut emit: impl FnMut(Done) -> bool,
) {
    let stream = match SpeechStream::speech(tts, speech, lang) {
        Ok(s) => match rate {
            Some(r) => s.at_rate(r),
            None => s,
        },
        Err(e) => {
            tracing::warn!(error = %e, "no voice for the language");
            emit(Done::Audio {
                id,
                pcm: None,
                last: true,
            });
            return;
        }
    };
    let n = stream.remaining();
    if n == 0 {
        emit(Done::Audio {
            id,
            pcm: None,
            last: true,
        });
        return;
    }
    for (i, r) in stream.enumerate() {
        let pcm = r
            .inspect_err(|e| tracing::warn!(error = %e, "synthesis failed"))
            .ok();
        let piece = Done::Audio {
            id,
            pcm,
            last: i + 1 == n,
        };
        if !emit(piece) {
            return;
        }
    }
}

/// Runs the calling blocking-pool thread below the calls' media in CPU
/// priority (`ivr_core::sched`): synthesis and the end-of-turn model take
/// whole cores for tens of milliseconds, and RTP pacing must not wait for
/// them. Tokio's blocking pool runs only such background work here.
fn background() {
    if let Err(e) = ivr_core::sched::enter_background() {
        tracing::debug!(error = %e, "background thread priority not lowered");
    }
}

/// A piece of work for the [`EmbedPool`].
type EmbedWork = Box<dyn FnOnce() + Send>;

/// The threads that make the meaning of callers' words ([`Job::Embed`]):
/// tens of milliseconds of CPU each, which must not be spent on the async
/// runtime's workers (they pace every call's RTP). They run at the priority
/// of the thread that started them, the media's (start the pool from the
/// engine's own start-up, not from a background thread): the caller's
/// reply waits for the meaning, so it is not background work. Not tokio's
/// blocking pool, whose threads run synthesis and the end-of-turn model
/// lowered ([`background`]) and stay lowered. Work waits in order of
/// arrival while every thread is busy; the threads end when the last
/// handle is dropped.
#[derive(Clone)]
pub struct EmbedPool {
    tx: std_mpsc::Sender<EmbedWork>,
}

impl std::fmt::Debug for EmbedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedPool").finish_non_exhaustive()
    }
}

impl EmbedPool {
    /// A pool of `threads` threads (at least one), started now. A thread
    /// the OS refuses is left out (warned); with none, every [`Job::Embed`]
    /// is answered with an error and the flow embeds as before.
    pub fn new(threads: usize) -> Self {
        let (tx, rx) = std_mpsc::channel::<EmbedWork>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("ivr-embed-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next piece.
                    let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match next {
                        Ok(work) => work(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "embedding thread not started");
            }
        }
        EmbedPool { tx }
    }

    /// One thread per core the process may use.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Queues `work`; false when no thread is left to do it.
    fn run(&self, work: EmbedWork) -> bool {
        self.tx.send(work).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_runs_on_the_pools_own_threads_at_the_starting_threads_priority() {
        let pool = EmbedPool::new(2);
        let (tx, rx) = std_mpsc::channel();
        for _ in 0..4 {
            let tx = tx.clone();
            let queued = pool.run(Box::new(move || {
                let name = std::thread::current().name().map(str::to_string);
                let _ = tx.send((name, ivr_core::sched::this_thread_nice().ok()));
            }));
            assert!(queued);
        }
        let here = ivr_core::sched::this_thread_nice().ok();
        for _ in 0..4 {
            let (name, nice) = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("the work ran");
            assert!(name.is_some_and(|n| n.starts_with("ivr-embed-")));
            assert_eq!(nice, here, "not lowered to the background's priority");
        }
    }
}
