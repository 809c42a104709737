//! The worker pool: fixed worker threads behind a bounded queue.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Candidate, LanguageChoice, SttError, Transcript};

/// A job on its way to a worker.
pub(crate) struct Job {
    pub(crate) samples: Vec<f32>,
    pub(crate) audio: Duration,
    pub(crate) language: LanguageChoice,
    pub(crate) prompt: String,
    pub(crate) candidates: Vec<Candidate>,
    pub(crate) cancel: crate::Cancel,
    pub(crate) enqueued: Instant,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<Transcript, SttError>>,
}

/// What a worker does with one job (whisper in production, a stand-in in the pool's tests).
pub(crate) type Work = Box<dyn FnMut(&Job) -> Result<Transcript, SttError> + Send>;

/// Fixed worker threads behind a bounded queue.
pub(crate) struct Pool {
    tx: Option<SyncSender<Job>>,
    pub(crate) queue: usize,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts one thread per `Work`, with `queue` places for waiting jobs.
    pub(crate) fn start(works: Vec<Work>, queue: usize) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let workers = works
            .into_iter()
            .enumerate()
            .map(|(i, work)| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("stt-worker-{i}"))
                    .spawn(move || {
                        // Below the calls' media in CPU priority (ivr_core::sched).
                        let _ = ivr_core::sched::enter_background();
                        worker_loop(&rx, work)
                    })
                    .expect("spawning a thread fails only when the OS is out of resources")
            })
            .collect();
        Self {
            tx: Some(tx),
            queue,
            workers,
        }
    }

    /// Hands a job to the queue; a full queue is `Overloaded` at once.
    pub(crate) fn submit(&self, job: Job) -> Result<(), SttError> {
        let tx = self.tx.as_ref().ok_or(SttError::Stopped)?;
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SttError::Overloaded { queue: self.queue }),
            Err(TrySendError::Disconnected(_)) => Err(SttError::Stopped),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the channel ends every worker after its current job.
        self.tx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker_loop(rx: &Mutex<Receiver<Job>>, mut work: Work) {
    loop {
        let job = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let queued = job.enqueued.elapsed();
        if job.cancel.is_cancelled() {
            // Withdrawn while it waited: not worth a worker.
            let _ = job.reply.send(Err(SttError::Cancelled));
            continue;
        }
        let started = Instant::now();
        let result = work(&job).map(|mut t| {
            t.timing.queued = queued;
            t.timing.processing = started.elapsed();
            t
        });
        // The caller may have gone away (call hung up): nothing to do then.
        let _ = job.reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SttTiming;
    use ivr_core::{Lang, Pii};

    fn job(reply: tokio::sync::oneshot::Sender<Result<Transcript, SttError>>) -> Job {
        Job {
            samples: vec![],
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
}
