//! The flow debugger's event log of one browser call, and its stream of
//! server-sent events (`GET /api/v1/calls/webrtc/{call_ref}/events`).
//!
//! The call's task appends JSON events (what was heard and how sure,
//! intent scores, steps, variables, integration calls, turn timings, the
//! call's state); each page connection reads them from the start and then
//! as they come. Bounded: the log keeps the last [`MAX_EVENTS`]; a reader
//! that fell further behind skips to the oldest kept. The log is the
//! operator's own test call and is dropped with the call's entry (two
//! minutes after it ended); nothing of it is written to the engine's log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::call::debug::DebugEvent;

/// Events kept per call.
pub const MAX_EVENTS: usize = 1000;

#[derive(Default)]
struct Inner {
    next: u64,
    events: VecDeque<(u64, Value)>,
    ended: bool,
}

/// One call's debugger events.
#[derive(Default)]
pub struct DebugLog {
    inner: Mutex<Inner>,
    notify: Notify,
}

impl DebugLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends an event.
    pub fn push(&self, v: Value) {
        {
            let mut g = self.lock();
            let seq = g.next;
            g.next += 1;
            if g.events.len() >= MAX_EVENTS {
                g.events.pop_front();
            }
            g.events.push_back((seq, v));
        }
        self.notify.notify_waiters();
    }

    /// Appends a core event, shown to the call's operator (the one place
    /// its personal data is exposed).
    pub fn push_core(&self, e: DebugEvent) {
        self.push(to_json(e));
    }

    /// No more events will come.
    pub fn end(&self) {
        self.lock().ended = true;
        self.notify.notify_waiters();
    }

    /// The first event at or after `seq`, or whether the log has ended.
    fn at(&self, seq: u64) -> Result<(u64, Value), bool> {
        let g = self.lock();
        match g.events.iter().find(|(s, _)| *s >= seq) {
            Some((s, v)) => Ok((*s, v.clone())),
            None => Err(g.ended),
        }
    }

    /// Every event so far (tests).
    pub fn snapshot(&self) -> Vec<Value> {
        self.lock().events.iter().map(|(_, v)| v.clone()).collect()
    }
}

fn to_json(e: DebugEvent) -> Value {
    match e {
        DebugEvent::Heard {
            text,
            confidence,
            lang,
        } => {
            json!({"kind": "heard", "text": text.expose(), "confidence": confidence, "lang": lang})
        }
        DebugEvent::Key { key } => json!({"kind": "key", "key": key.to_string()}),
        DebugEvent::Flow {
            step,
            intents,
            explanations,
            variables,
        } => json!({
            "kind": "flow",
            "step": step,
            "intents": intents,
            "explanations": explanations.iter().map(|e| e.expose().clone()).collect::<Vec<_>>(),
            "variables": variables.iter().map(|(k, v)| json!({"name": k, "value": v.expose()})).collect::<Vec<_>>(),
        }),
        DebugEvent::Integration { request } => json!({"kind": "integration", "request": request}),
        DebugEvent::IntegrationResult { response, ms } => {
            json!({"kind": "integration_result", "response": response, "ms": ms})
        }
        DebugEvent::Turn {
            latency_ms,
            stt_ms,
            tts_ms,
            pacing_ms,
            eager,
        } => json!({"kind": "turn", "latency_ms": latency_ms, "stt_ms": stt_ms,
            "tts_ms": tts_ms, "pacing_ms": pacing_ms, "eager": eager}),
        // A new kind the page does not know yet: named, not shown.
        #[allow(unreachable_patterns, reason = "DebugEvent is non_exhaustive")]
        _ => json!({"kind": "other"}),
    }
}

/// The log as server-sent events: every event from the first, then each as
/// it comes; the stream closes after the last once the call has ended.
pub fn stream(
    log: Arc<DebugLog>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let s = futures_util::stream::unfold((log, 0u64), |(log, seq)| async move {
        loop {
            let found = {
                let notified = log.notify.notified();
                match log.at(seq) {
                    Ok(found) => Some(found),
                    Err(true) => return None,
                    Err(false) => {
                        // Wake on a new event; look again at least every 15 s.
                        let _ = tokio::time::timeout(Duration::from_secs(15), notified).await;
                        None
                    }
                }
            };
            if let Some((s, v)) = found {
                let kind = v["kind"].as_str().unwrap_or("other").to_string();
                let ev = Event::default()
                    .event(kind)
                    .id(s.to_string())
                    .data(v.to_string());
                return Some((Ok(ev), (log, s + 1)));
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}
