//! The worker pool: fixed worker threads behind a bounded queue, with an
//! affinity: a job whose audio a waiting worker has just worked on goes to
//! that worker, whose whisper state still holds the audio encoded.
//!
//! That is the same utterance recognised again (the flow's
//! `RecognizeAgain`: not understood in one language, heard in another), which
//! then costs decoder steps only instead of a second encoder pass (on a
//! 2-core AVX2 machine about 360-470 ms of a 1-3 s utterance). Any other
//! worker would have to encode it again; so would this one once it has
//! taken other work, which the worker itself checks (`WhisperWorker::run`).
//! The queue is a mutex and a condition variable rather than a channel so
//! that a job can be handed to one worker.

use std::collections::VecDeque;
use std::hash::Hasher;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Candidate, LanguageChoice, SttError, Transcript};

/// A job on its way to a worker.
pub(crate) struct Job {
    /// The audio as sent (what `[stt] decode = "full"` recognises).
    pub(crate) samples: Vec<f32>,
    /// The audio with its tail settled ([`crate::audio::settle_tail`]):
    /// what the step-wise decoder recognises.
    pub(crate) settled: Vec<f32>,
    /// A fingerprint of `settled` ([`audio_key`]): which audio this is.
    pub(crate) audio_key: u64,
    pub(crate) audio: Duration,
    pub(crate) language: LanguageChoice,
    pub(crate) prompt: String,
    pub(crate) candidates: Vec<Candidate>,
    pub(crate) cancel: crate::Cancel,
    pub(crate) enqueued: Instant,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<Transcript, SttError>>,
}

/// A 64-bit fingerprint of audio samples (their bits and count), to tell
/// the same utterance sent again from another. Kept in memory only, never
/// logged.
pub(crate) fn audio_key(samples: &[f32]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write_usize(samples.len());
    let mut buf = Vec::with_capacity(samples.len() * 4);
    for s in samples {
        buf.extend_from_slice(&s.to_bits().to_le_bytes());
    }
    h.write(&buf);
    h.finish()
}

/// What a worker does with one job (whisper in production, a stand-in in the pool's tests).
pub(crate) type Work = Box<dyn FnMut(&Job) -> Result<Transcript, SttError> + Send>;

/// Fixed worker threads behind a bounded queue.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    pub(crate) queue: usize,
    workers: Vec<JoinHandle<()>>,
}

struct Shared {
    state: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // No code panics while holding the lock; a poisoned lock still
        // holds a consistent queue.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct Queue {
    /// Jobs for any worker, oldest first.
    waiting: VecDeque<Job>,
    /// A job handed to one worker (by index).
    handed: Vec<Option<Job>>,
    /// The audio each worker worked on last (what its state holds encoded).
    holds: Vec<Option<u64>>,
    /// Each worker is waiting for work and has not been handed or taken any.
    idle: Vec<bool>,
    /// The pool is being dropped: workers finish what is queued and stop.
    closed: bool,
}

impl Queue {
    fn idle_workers(&self) -> usize {
        self.idle.iter().filter(|i| **i).count()
    }
}

impl Pool {
    /// Starts one thread per `Work`, with `queue` places for jobs waiting
    /// beyond the idle workers.
    pub(crate) fn start(works: Vec<Work>, queue: usize) -> Self {
        let n = works.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(Queue {
                waiting: VecDeque::with_capacity(queue),
                handed: (0..n).map(|_| None).collect(),
                holds: vec![None; n],
                idle: vec![false; n],
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let workers = works
            .into_iter()
            .enumerate()
            .map(|(i, work)| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("stt-worker-{i}"))
                    .spawn(move || {
                        // Below the calls' media in CPU priority (ivr_core::sched).
                        let _ = ivr_core::sched::enter_background();
                        worker_loop(&shared, i, work)
                    })
                    .expect("spawning a thread fails only when the OS is out of resources")
            })
            .collect();
        Self {
            shared,
            queue,
            workers,
        }
    }

    /// Hands a job to an idle worker or the queue; a full queue is
    /// `Overloaded` at once. With `queue` 0 a job is taken only when a
    /// worker is idle.
    pub(crate) fn submit(&self, job: Job) -> Result<(), SttError> {
        let mut q = self.shared.lock();
        if q.closed {
            return Err(SttError::Stopped);
        }
        let idle = q.idle_workers();
        // The worker holding this audio, if it waits and another idle
        // worker is left for every job already queued.
        let holder = (idle > q.waiting.len())
            .then(|| (0..q.idle.len()).find(|&i| q.idle[i] && q.holds[i] == Some(job.audio_key)))
            .flatten();
        if let Some(i) = holder {
            q.idle[i] = false;
            q.handed[i] = Some(job);
        } else if q.waiting.len() >= self.queue + idle {
            return Err(SttError::Overloaded { queue: self.queue });
        } else {
            q.waiting.push_back(job);
        }
        drop(q);
        self.shared.wake.notify_all();
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Every worker ends once the queue is empty, after its current job.
        self.shared.lock().closed = true;
        self.shared.wake.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker_loop(shared: &Shared, me: usize, mut work: Work) {
    loop {
        let job = {
            let mut q = shared.lock();
            q.idle[me] = true;
            loop {
                if let Some(job) = q.handed[me].take() {
                    break job;
                }
                if let Some(job) = q.waiting.pop_front() {
                    q.idle[me] = false;
                    break job;
                }
                if q.closed {
                    q.idle[me] = false;
                    return;
                }
                q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let queued = job.enqueued.elapsed();
        if job.cancel.is_cancelled() {
            // Withdrawn while it waited: not worth a worker.
            let _ = job.reply.send(Err(SttError::Cancelled));
            continue;
        }
        // From now on this worker's state holds this audio (or nothing it
        // can reuse, which the worker checks itself).
        shared.lock().holds[me] = Some(job.audio_key);
        let started = Instant::now();
        let result = work(&job).map(|mut t| {
            t.timing.queued = queued;
            t.timing.processing = started.elapsed();
            t
        });
        // Idle again before the reply goes out, so that a request the reply
        // leads to (the same audio again) finds this worker waiting.
        shared.lock().idle[me] = true;
        // The caller may have gone away (call hung up): nothing to do then.
        let _ = job.reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SttTiming;
    use ivr_core::{Lang, Pii};
    use std::sync::mpsc;

    fn job(reply: tokio::sync::oneshot::Sender<Result<Transcript, SttError>>) -> Job {
        Job {
            samples: vec![],
            settled: vec![],
            audio_key: 0,
            audio: Duration::from_secs(1),
            language: LanguageChoice::Fixed(Lang::Da),
            prompt: String::new(),
            candidates: Vec::new(),
            cancel: crate::Cancel::default(),
            enqueued: Instant::now(),
            reply,
        }
    }

    fn ok(text: &str) -> Transcript {
        Transcript {
            text: Pii::new(text.into()),
            confidence: 1.0,
            no_speech: 0.0,
            avg_logprob: 0.0,
            dropped: None,
            spotted: None,
            language: Lang::Da,
            identified: None,
            timing: SttTiming::default(),
        }
    }

    /// One worker held busy on a gate, a queue of 2: the third waiting
    /// utterance is refused at once (the call plays its fallback) and the
    /// queued ones still complete when the worker frees up.
    #[test]
    fn a_full_queue_refuses_at_once_and_queued_work_still_completes() {
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let work: Work = Box::new(move |_job: &Job| {
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
            Ok(ok("hej"))
        });
        let pool = Pool::start(vec![work], 2);
        let mut replies = Vec::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        pool.submit(job(tx)).unwrap();
        replies.push(rx);
        started_rx.recv().unwrap(); // the worker holds job 1
        for _ in 0..2 {
            let (tx, rx) = tokio::sync::oneshot::channel();
            pool.submit(job(tx)).unwrap();
            replies.push(rx);
        }
        let (tx, _rx) = tokio::sync::oneshot::channel();
        match pool.submit(job(tx)) {
            Err(SttError::Overloaded { queue }) => assert_eq!(queue, 2),
            other => panic!("expected Overloaded, got {other:?}"),
        }
        for _ in 0..3 {
            gate_tx.send(()).unwrap();
        }
        for rx in replies {
            let t = rx.blocking_recv().unwrap().unwrap();
            assert_eq!(t.text.expose(), "hej");
        }
    }

    #[test]
    fn a_zero_queue_takes_work_only_when_a_worker_is_idle() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let work: Work = Box::new(move |_job: &Job| {
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
            Ok(ok("ja"))
        });
        let pool = Pool::start(vec![work], 0);
        // The worker may not be waiting yet: retry until it takes the job.
        let rx = loop {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if pool.submit(job(tx)).is_ok() {
                break rx;
            }
            std::thread::yield_now();
        };
        started_rx.recv().unwrap();
        let (tx, _rx) = tokio::sync::oneshot::channel();
        assert!(matches!(
            pool.submit(job(tx)),
            Err(SttError::Overloaded { queue: 0 })
        ));
        gate_tx.send(()).unwrap();
        assert_eq!(rx.blocking_recv().unwrap().unwrap().text.expose(), "ja");
    }

    /// A request withdrawn while it waits for the busy worker is answered
    /// `Cancelled` without being worked on; the one after it is worked on.
    #[test]
    fn a_request_withdrawn_while_queued_is_skipped() {
        let (started_tx, started_rx) = mpsc::channel::<()>();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let worked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&worked);
        let work: Work = Box::new(move |_job: &Job| {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            started_tx.send(()).unwrap();
            gate_rx.recv().unwrap();
            Ok(ok("hej"))
        });
        let pool = Pool::start(vec![work], 2);
        let (tx, first) = tokio::sync::oneshot::channel();
        pool.submit(job(tx)).unwrap();
        started_rx.recv().unwrap(); // the worker holds the first
        let (tx, withdrawn) = tokio::sync::oneshot::channel();
        let mut speculative = job(tx);
        let cancel = crate::Cancel::default();
        speculative.cancel = cancel.clone();
        pool.submit(speculative).unwrap();
        let (tx, last) = tokio::sync::oneshot::channel();
        pool.submit(job(tx)).unwrap();
        cancel.cancel();
        gate_tx.send(()).unwrap();
        assert_eq!(first.blocking_recv().unwrap().unwrap().text.expose(), "hej");
        assert!(matches!(
            withdrawn.blocking_recv().unwrap(),
            Err(SttError::Cancelled)
        ));
        started_rx.recv().unwrap(); // the last one, not the withdrawn one
        gate_tx.send(()).unwrap();
        assert_eq!(last.blocking_recv().unwrap().unwrap().text.expose(), "hej");
        assert_eq!(worked.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    /// Two workers: the same audio sent again goes to the worker that
    /// worked on it (its state holds the encoding), every time; other
    /// audio goes to whichever worker is free.
    #[test]
    fn the_same_audio_again_goes_to_the_worker_that_holds_it() {
        let ran: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
        let works: Vec<Work> = (0..2)
            .map(|w| {
                let ran = Arc::clone(&ran);
                Box::new(move |job: &Job| {
                    ran.lock().unwrap().push((w, job.audio_key));
                    Ok(ok("hej"))
                }) as Work
            })
            .collect();
        let pool = Pool::start(works, 2);
        let run = |key: u64| {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let mut j = job(tx);
            j.audio_key = key;
            pool.submit(j).unwrap();
            rx.blocking_recv().unwrap().unwrap();
            ran.lock().unwrap().last().copied().unwrap()
        };
        let (holder, _) = run(7);
        for _ in 0..20 {
            assert_eq!(run(7), (holder, 7), "the same audio again");
        }
        // Other audio, then the first again: the first goes back to its
        // holder when that worker did not take the other.
        let (other_worker, _) = run(8);
        let (again, _) = run(7);
        if other_worker != holder {
            assert_eq!(again, holder);
        }
        assert_eq!(audio_key(&[0.5, -0.25]), audio_key(&[0.5, -0.25]));
        assert_ne!(audio_key(&[0.5, -0.25]), audio_key(&[0.5, -0.5]));
        assert_ne!(audio_key(&[0.0]), audio_key(&[0.0, 0.0]));
    }

    /// With one worker idle and holding the audio but another job already
    /// queued for it, the same audio is not handed to it ahead of that job's
    /// only worker: it queues like any other (or is refused with no queue).
    #[test]
    fn a_held_audio_does_not_take_the_only_idle_worker_from_a_queued_job() {
        let shared = Shared {
            state: Mutex::new(Queue {
                waiting: VecDeque::new(),
                handed: vec![None],
                holds: vec![Some(7)],
                idle: vec![true],
                closed: false,
            }),
            wake: Condvar::new(),
        };
        let pool = Pool {
            shared: Arc::new(shared),
            queue: 0,
            workers: Vec::new(),
        };
        let (tx, _a) = tokio::sync::oneshot::channel();
        pool.submit(job(tx)).unwrap(); // queued for the idle worker
        let (tx, _b) = tokio::sync::oneshot::channel();
        let mut again = job(tx);
        again.audio_key = 7;
        assert!(matches!(
            pool.submit(again),
            Err(SttError::Overloaded { queue: 0 })
        ));
        let q = pool.shared.lock();
        assert!(q.handed[0].is_none());
        assert_eq!(q.waiting.len(), 1);
    }
}
