//! Calls in progress, for the console's live page: one small entry per call
//! (municipality, masked caller number, language, current step, last intent,
//! when it started), published by the call's task whenever its flow moved.
//!
//! The call core stays sans-IO: it exposes a cheap [`LiveView`] of its state
//! and a counter that changes when the flow moves; the task copies the view
//! here only when that counter changed (a lock held for one small copy, a few
//! times per call turn). Nothing personal is stored: the number is masked
//! before it enters the registry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What the live page shows of one call.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiveCall {
    /// Call reference.
    pub call_ref: String,
    /// Municipality id.
    pub municipality: String,
    /// The caller's number with all but the last two digits hidden.
    pub caller: String,
    /// Conversation language (`da`, `en`).
    pub lang: String,
    /// The flow step the call is at (`flow/step`), empty before the flow began.
    pub step: String,
    /// The last intent recognised, if any.
    pub last_intent: Option<String>,
    /// When the call arrived.
    pub started_at: DateTime<Utc>,
    /// Seconds since it was answered (from the engine's monotonic clock,
    /// so a deployment on a fixed or skewed wall clock still shows it right).
    pub seconds: u64,
    /// When it was answered (monotonic).
    #[serde(skip)]
    #[schema(ignore)]
    pub since: std::time::Instant,
}

/// The call core's view of itself (see [`crate::call::core::CallCore::live_view`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveView {
    /// Conversation language.
    pub lang: ivr_core::Lang,
    /// Current step.
    pub step: String,
    /// Last intent.
    pub last_intent: Option<String>,
}

/// The registry of calls in progress. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct LiveCalls {
    inner: Arc<Mutex<BTreeMap<String, LiveCall>>>,
}

/// Hides all but the last two digits of a number (`+4512345678` ->
/// `+45••••••78`); a country prefix `+NN` stays, it says nothing about the caller.
pub fn mask_number(n: &str) -> String {
    let digits = n.chars().filter(char::is_ascii_digit).count();
    let keep_prefix = if n.starts_with('+') && digits > 8 {
        2
    } else {
        0
    };
    let mut seen = 0usize;
    let mut out = String::new();
    for c in n.chars() {
        if c.is_ascii_digit() {
            seen += 1;
            if seen <= keep_prefix || seen + 2 > digits {
                out.push(c);
            } else {
                out.push('•');
            }
        } else if c == '+' {
            out.push(c);
        }
    }
    if out.is_empty() {
        "anonymous".into()
    } else {
        out
    }
}

impl LiveCalls {
    /// A call was answered.
    pub fn begin(&self, call: LiveCall) {
        self.lock().insert(call.call_ref.clone(), call);
    }

    /// The call's flow moved.
    pub fn update(&self, call_ref: &str, view: &LiveView) {
        if let Some(c) = self.lock().get_mut(call_ref) {
            c.lang = view.lang.code().to_string();
            c.step.clone_from(&view.step);
            c.last_intent.clone_from(&view.last_intent);
        }
    }

    /// The call ended.
    pub fn end(&self, call_ref: &str) {
        self.lock().remove(call_ref);
    }

    /// Calls in progress, oldest first, for the municipalities `visible` admits.
    pub fn list(&self, visible: impl Fn(&str) -> bool) -> Vec<LiveCall> {
        let mut v: Vec<LiveCall> = self
            .lock()
            .values()
            .filter(|c| visible(&c.municipality))
            .cloned()
            .map(|mut c| {
                c.seconds = c.since.elapsed().as_secs();
                c
            })
            .collect();
        v.sort_by_key(|c| c.started_at);
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LiveCall>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_number_keeps_the_country_code_and_the_last_two_digits() {
        assert_eq!(mask_number("+4512345678"), "+45••••••78");
        assert_eq!(mask_number("12345678"), "••••••78");
        assert_eq!(mask_number(""), "anonymous");
    }

    #[test]
    fn the_registry_lists_only_visible_calls_and_forgets_ended_ones() {
        let live = LiveCalls::default();
        for (r, m) in [("c1", "nordby"), ("c2", "sydhavn")] {
            live.begin(LiveCall {
                call_ref: r.into(),
                municipality: m.into(),
                caller: "••78".into(),
                lang: "da".into(),
                step: String::new(),
                last_intent: None,
                started_at: Utc::now(),
                seconds: 0,
                since: std::time::Instant::now(),
            });
        }
        live.update(
            "c1",
            &LiveView {
                lang: ivr_core::Lang::En,
                step: "main/menu".into(),
                last_intent: Some("pas".into()),
            },
        );
        let seen = live.list(|m| m == "nordby");
        assert_eq!(seen.len(), 1);
        assert_eq!(
            (seen[0].step.as_str(), seen[0].lang.as_str()),
            ("main/menu", "en")
        );
        live.end("c1");
        assert!(live.list(|_| true).iter().all(|c| c.call_ref == "c2"));
    }
}
