//! The integrations a call's flow reaches: the mapping from the flow's
//! [`Request`]s onto [`Integrations`] (the one handle `ivr-integrations`
//! starts: database, callback store, mail outbox, Frontdesk, transfer
//! context, workers) and back to [`Response`]s the flow can speak about.
//! Details of failures go to the log (without personal data); the flow only
//! learns the kind.
//!
//! Also the Frontdesk stand-in as the flows see it
//! ([`start_frontdesk_standin`]): `ivr serve` with `[standins]` and
//! `ivr simulate` serve every municipality's own queues from it.

use std::sync::Arc;

use chrono::{DateTime, Days, Utc};
use chrono_tz::Europe::Copenhagen;
use ivr_core::{CallId, Lang, Pii, WallClock};
use ivr_flow::{model::Municipality, Request, Response, Slot};
use ivr_integrations::callback::{CallbackKind, CallbackRequest, Enqueued, TimeWindow};
use ivr_integrations::frontdesk::{BookingRequest, CancelBy, FrontdeskError, QueueInfo};
use ivr_integrations::mail::{CprMask, MailKind, OutgoingMail};
use ivr_integrations::standin::frontdesk::{
    FrontdeskStandin, FrontdeskStandinConfig, MunicipalityDesk, OpeningHours,
};
use ivr_integrations::transfer::{ContextValue, TransferContext, TransferHeaders};
use ivr_integrations::Integrations;

/// Context fields that are never personal data and may always travel with a transfer.
const PLAIN_FIELDS: &[&str] = &[
    "intent",
    "topic",
    "queue",
    "queue_name",
    "department",
    "lang",
    "case",
];

/// The name a booking gets when the flow did not collect one.
pub const BOOKED_BY_PHONE: &str = "Bestilt via telefonrobot";

/// Everything a call's flow can reach: the started [`Integrations`], shared
/// by every call.
#[derive(Clone)]
pub struct Services {
    integrations: Arc<Integrations>,
}

/// Who is asking: the call and its municipality.
#[derive(Debug, Clone)]
pub struct Caller<'a> {
    /// The call reference.
    pub call_ref: &'a CallId,
    /// Municipality id.
    pub municipality: &'a str,
    /// The flow's current language.
    pub lang: Lang,
}

impl Services {
    /// The flows' view of started integrations.
    pub fn new(integrations: Arc<Integrations>) -> Self {
        Self { integrations }
    }

    /// The integrations behind the flows' requests (stores, workers).
    pub fn integrations(&self) -> &Arc<Integrations> {
        &self.integrations
    }

    /// Performs one flow request.
    pub async fn execute(&self, who: Caller<'_>, req: Request, now: DateTime<Utc>) -> Response {
        match req {
            Request::StoreCallback {
                municipality,
                department,
                number,
                topic: _,
                window_start,
                window_end,
                lang,
            } => {
                // The topic may hold the caller's own words: store the
                // department (a category), never a transcript.
                let r = CallbackRequest {
                    call_ref: who.call_ref.clone(),
                    kind: CallbackKind::callback(),
                    municipality,
                    phone: number,
                    topic: department,
                    lang,
                    window: TimeWindow {
                        start: window_start,
                        end: window_end,
                    },
                };
                match self.integrations.callbacks().enqueue(&r, now).await {
                    Ok(Enqueued::New(_) | Enqueued::AlreadyQueued(_)) => Response::Ok,
                    Err(e) => {
                        tracing::warn!(call = %who.call_ref, error = %e, "callback not stored");
                        Response::Unavailable
                    }
                }
            }
            Request::SendMail {
                to,
                subject,
                body,
                kind,
                fields,
                ..
            } => {
                let mask = self.integrations.cpr_mask();
                let (subject, body) = finish_mail(&subject, &body, &fields, mask, &who);
                if to.is_empty() {
                    tracing::warn!(call = %who.call_ref, "mail without recipients");
                    return Response::Error;
                }
                let kind = match kind.as_deref() {
                    Some("jobcentre_cancellation") => MailKind::JobcentreCancellation,
                    _ => MailKind::OutOfHoursMessage,
                };
                for (i, rcpt) in to.iter().enumerate() {
                    let mail = OutgoingMail {
                        key: format!("{}:{}:{i}", who.call_ref, kind.as_str()),
                        municipality: who.municipality.to_string(),
                        kind,
                        from: self.integrations.mail_from().to_string(),
                        to: rcpt.clone(),
                        subject: subject.clone(),
                        body: body.clone(),
                    };
                    if let Err(e) = self.integrations.outbox().enqueue(&mail, now).await {
                        tracing::warn!(call = %who.call_ref, error = %e, "mail not queued");
                        return Response::Unavailable;
                    }
                }
                Response::Ok
            }
            Request::FrontdeskSlots {
                queue, from, count, ..
            } => {
                let day = from.with_timezone(&Copenhagen).date_naive();
                let to = day.checked_add_days(Days::new(14)).unwrap_or(day);
                match self
                    .integrations
                    .frontdesk()
                    .free_slots(who.municipality, &queue, day, to)
                    .await
                {
                    Ok(slots) => Response::Slots(
                        slots
                            .into_iter()
                            .filter(|s| s.start >= from)
                            .take(count)
                            .map(|s| Slot {
                                id: s.id,
                                start: s.start,
                            })
                            .collect(),
                    ),
                    Err(e) => fd_failure(who.call_ref, &e),
                }
            }
            Request::FrontdeskBook {
                queue,
                slot,
                name,
                cpr,
                phone,
                ..
            } => {
                let r = BookingRequest {
                    municipality: who.municipality.to_string(),
                    queue_id: queue,
                    slot_id: slot.id,
                    // Flows need not ask for a name; Frontdesk requires
                    // one, so such a booking is labelled as made by phone.
                    name: name
                        .filter(|n| !n.expose().trim().is_empty())
                        .unwrap_or_else(|| Pii::new(BOOKED_BY_PHONE.to_string())),
                    phone,
                    cpr,
                    call_ref: who.call_ref.clone(),
                };
                match self.integrations.frontdesk().book(&r).await {
                    Ok(b) => Response::Booked {
                        reference: b.reference,
                        start: b.start,
                    },
                    Err(e) => fd_failure(who.call_ref, &e),
                }
            }
            Request::FrontdeskCancel {
                queue: _,
                cpr,
                date: _,
                phone,
                ..
            } => {
                let by = CancelBy::Caller { phone, cpr };
                match self
                    .integrations
                    .frontdesk()
                    .cancel(who.municipality, &by)
                    .await
                {
                    Ok(refs) if refs.is_empty() => Response::NotFound,
                    Ok(_) => Response::Cancelled { start: None },
                    Err(e) => fd_failure(who.call_ref, &e),
                }
            }
            other => {
                tracing::warn!(call = %who.call_ref, request = ?std::mem::discriminant(&other), "request not implemented by the engine");
                Response::Error
            }
        }
    }

    /// The SIP headers that carry a transfer's context.
    ///
    /// # Errors
    /// When the configured header form cannot hold even the call reference.
    pub fn transfer_headers(
        &self,
        who: Caller<'_>,
        department: &str,
        context: &[(String, Pii<String>)],
        intent: Option<String>,
    ) -> Result<TransferHeaders, ivr_integrations::transfer::TransferError> {
        let fields = context
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "intent" | "lang" | "dept" | "department"))
            .map(|(k, v)| {
                let value = if PLAIN_FIELDS.contains(&k.as_str()) {
                    ContextValue::Plain(v.expose().clone())
                } else {
                    ContextValue::Personal(v.clone())
                };
                (k.clone(), value)
            })
            .collect();
        let intent = context
            .iter()
            .find(|(k, _)| k == "intent")
            .map(|(_, v)| v.expose().clone())
            .or(intent);
        self.integrations.transfer().build(&TransferContext {
            call_ref: who.call_ref.clone(),
            intent,
            lang: who.lang,
            department: Some(department.to_string()),
            fields,
        })
    }
}

/// The Frontdesk stand-in's configuration: its realistic municipalities at
/// `clock`'s time, plus every municipality of the deployment it does not
/// know, with that municipality's own `[queue.*]` (Borgerservice hours).
pub fn frontdesk_standin_config<'a>(
    municipalities: impl IntoIterator<Item = &'a Municipality>,
    clock: Arc<dyn WallClock>,
) -> FrontdeskStandinConfig {
    let mut sc = FrontdeskStandinConfig::realistic_at(clock);
    for m in municipalities {
        if sc.municipalities.iter().any(|d| d.id == m.id) {
            continue;
        }
        let queues = m
            .queues
            .iter()
            .map(|(id, q)| QueueInfo {
                id: id.clone(),
                name_da: q.name.get(&Lang::Da).unwrap_or(id).clone(),
                name_en: q.name.get(&Lang::En).unwrap_or(id).clone(),
                slot_minutes: q.slot_minutes,
            })
            .collect();
        sc.municipalities.push(MunicipalityDesk {
            id: m.id.clone(),
            queues,
            hours: OpeningHours::borgerservice(),
        });
    }
    sc
}

/// Starts the Frontdesk stand-in on a free loopback port with
/// [`frontdesk_standin_config`]; point `[integrations.frontdesk] base_url`
/// at its [`FrontdeskStandin::base_url`].
///
/// # Errors
/// When the loopback port cannot be bound.
pub async fn start_frontdesk_standin<'a>(
    municipalities: impl IntoIterator<Item = &'a Municipality>,
    clock: Arc<dyn WallClock>,
) -> std::io::Result<FrontdeskStandin> {
    let config = frontdesk_standin_config(municipalities, clock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    ivr_integrations::standin::frontdesk::serve(listener, config).await
}

/// Variables holding a CPR number: `cpr` and `*_cpr` (the flows' convention).
fn is_cpr_field(name: &str) -> bool {
    name == "cpr" || name.ends_with("_cpr")
}

/// The mail as sent: every CPR number the flow put into the subject or body
/// masked as configured (`cpr_mask`), and the call reference appended so the
/// recipient can find the call record.
fn finish_mail(
    subject: &Pii<String>,
    body: &Pii<String>,
    fields: &[(String, Pii<String>)],
    mask: CprMask,
    who: &Caller<'_>,
) -> (Pii<String>, Pii<String>) {
    let mut subject = subject.expose().clone();
    let mut body = body.expose().clone();
    for (name, value) in fields {
        let raw = value.expose().trim();
        if !is_cpr_field(name) || raw.is_empty() {
            continue;
        }
        let masked = mask.apply(value, who.lang);
        subject = subject.replace(raw, &masked);
        body = body.replace(raw, &masked);
    }
    let label = match who.lang {
        Lang::Da => "Opkaldsreference",
        _ => "Call reference",
    };
    if !body.ends_with('\n') {
        body.push('\n');
    }
    body.push_str(&format!("{label}: {}\n", who.call_ref));
    (Pii::new(subject), Pii::new(body))
}

fn fd_failure(call: &CallId, e: &FrontdeskError) -> Response {
    tracing::warn!(call = %call, error = %e, "Frontdesk request failed");
    match e {
        FrontdeskError::SlotTaken => Response::SlotTaken,
        FrontdeskError::NotFound(_) => Response::NotFound,
        FrontdeskError::Timeout | FrontdeskError::Connect(_) | FrontdeskError::Server { .. } => {
            Response::Unavailable
        }
        _ => Response::Error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(cpr: &str) -> Vec<(String, Pii<String>)> {
        vec![
            ("name".into(), Pii::new("Karen Hansen".into())),
            ("cpr".into(), Pii::new(cpr.into())),
        ]
    }

    #[test]
    fn a_mail_shows_the_cpr_number_as_configured_and_the_call_reference() {
        let call = CallId::new("c00000000000000ab");
        let who = Caller {
            call_ref: &call,
            municipality: "nordby",
            lang: Lang::Da,
        };
        let subject = Pii::new("Aflysning 0102031234".to_string());
        let body = Pii::new("Navn: Karen Hansen\nCPR-nummer: 0102031234".to_string());
        let (s, b) = finish_mail(
            &subject,
            &body,
            &fields("0102031234"),
            CprMask::BirthDate,
            &who,
        );
        assert_eq!(s.expose(), "Aflysning 010203-XXXX");
        assert_eq!(
            b.expose(),
            "Navn: Karen Hansen\nCPR-nummer: 010203-XXXX\nOpkaldsreference: c00000000000000ab\n"
        );
        let (_, b) = finish_mail(&subject, &body, &fields("0102031234"), CprMask::Full, &who);
        assert!(
            b.expose().contains("CPR-nummer: 010203-1234\n"),
            "{}",
            b.expose()
        );
        let (_, b) = finish_mail(
            &subject,
            &body,
            &fields("0102031234"),
            CprMask::Hidden,
            &who,
        );
        assert!(!b.expose().contains("0102031234"), "{}", b.expose());
        assert!(
            b.expose().contains("CPR-nummer: (udeladt)\n"),
            "{}",
            b.expose()
        );
        let en = Caller {
            lang: Lang::En,
            ..who
        };
        let (_, b) = finish_mail(&subject, &body, &fields("0102031234"), CprMask::Hidden, &en);
        assert!(
            b.expose()
                .contains("CPR-nummer: (omitted)\nCall reference: c00000000000000ab\n"),
            "{}",
            b.expose()
        );
    }
}
