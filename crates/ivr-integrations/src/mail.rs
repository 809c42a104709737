//! Mails to caseworkers and departments: job-centre appointment
//! cancellations (use case 3) and out-of-hours messages (use case 1).
//!
//! A [`MailComposer`] turns structured fields into a mail from a template per
//! municipality, kind and language (Danish and English built in; overrides
//! from configuration), with `{field}` substitution (`{{`/`}}` for literal
//! braces; an unknown field is an error when the template is loaded, not
//! when a caller is on the line). CPR numbers are masked as configured
//! ([`CprMask`]). The composed [`OutgoingMail`] goes into the SQL outbox
//! ([`crate::outbox`]), which sends it over SMTP (lettre; RFC 5321, STARTTLS
//! per RFC 3207, implicit TLS per RFC 8314) and retries until it is sent.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Europe::Copenhagen;
use ivr_core::{
    dates::{month_name, weekday_name},
    CallId, Lang, Pii,
};
use serde::Deserialize;

use crate::outcome::Outcome;

/// Which mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// A citizen cancels a job-centre appointment.
    JobcentreCancellation,
    /// A message taken outside opening hours, for a department.
    OutOfHoursMessage,
}

impl MailKind {
    /// Stored name (also part of the idempotency key).
    pub fn as_str(self) -> &'static str {
        match self {
            MailKind::JobcentreCancellation => "jobcentre_cancellation",
            MailKind::OutOfHoursMessage => "out_of_hours_message",
        }
    }
    fn fields(self) -> &'static [&'static str] {
        &[
            "call_ref",
            "municipality",
            "called_at",
            "caller_name",
            "cpr",
            "birth_date",
            "phone",
            "appointment",
            "department",
            "message",
        ]
    }
}

/// How a CPR number appears in a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CprMask {
    /// Birth date part only: `010190-XXXX` (the default).
    #[default]
    BirthDate,
    /// All ten digits: `010190-1234` (only where the mailbox is cleared for it).
    Full,
    /// Not included at all: `(udeladt)` / `(omitted)`.
    Hidden,
}

impl CprMask {
    /// Masks a CPR number given as ten digits (spaces and a dash allowed).
    /// Anything else is treated as not a CPR number and hidden.
    pub fn apply(self, cpr: &Pii<String>, lang: Lang) -> String {
        let digits: String = cpr.expose().chars().filter(char::is_ascii_digit).collect();
        let hidden = match lang {
            Lang::Da => "(udeladt)",
            _ => "(omitted)",
        };
        if digits.len() != 10
            || cpr
                .expose()
                .chars()
                .any(|c| !(c.is_ascii_digit() || c == ' ' || c == '-'))
        {
            return hidden.to_string();
        }
        match self {
            CprMask::BirthDate => format!("{}-XXXX", &digits[..6]),
            CprMask::Full => format!("{}-{}", &digits[..6], &digits[6..]),
            CprMask::Hidden => hidden.to_string(),
        }
    }
}

/// Structured content of a mail; the template decides what is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct MailFields {
    /// The call (shown so the caseworker can find the call record).
    pub call_ref: CallId,
    /// Municipality id.
    pub municipality: String,
    /// Language of the mail (the caller's language).
    pub lang: Lang,
    /// When the call came.
    pub called_at: DateTime<Utc>,
    /// Who called.
    pub caller_name: Option<Pii<String>>,
    /// CPR number (masked by [`CprMask`] when rendered).
    pub cpr: Option<Pii<String>>,
    /// Date of birth, when the caller gave that instead of the CPR.
    pub birth_date: Option<NaiveDate>,
    /// Number to reach the caller.
    pub phone: Option<Pii<String>>,
    /// The appointment (local Danish time).
    pub appointment: Option<NaiveDateTime>,
    /// Department (out-of-hours messages).
    pub department: Option<String>,
    /// The message the caller left.
    pub message: Option<Pii<String>>,
}

/// Errors composing a mail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MailError {
    /// A template names a field that does not exist, or has a stray brace.
    #[error("template {municipality}/{kind}/{lang}: {reason}")]
    BadTemplate {
        /// Municipality of the template (`*` = default).
        municipality: String,
        /// Mail kind.
        kind: &'static str,
        /// Language code.
        lang: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// No template for this kind and language.
    #[error("no {kind} template in language {lang}")]
    NoTemplate {
        /// Mail kind.
        kind: &'static str,
        /// Language code.
        lang: &'static str,
    },
    /// No recipient configured for this municipality and kind.
    #[error("no recipient configured for {kind} in {municipality}")]
    NoRecipient {
        /// Municipality id.
        municipality: String,
        /// Mail kind.
        kind: &'static str,
    },
    /// A required field is missing for this kind.
    #[error("missing field {0} for this mail")]
    MissingField(&'static str),
    /// A configured address is not a valid mailbox.
    #[error("invalid mail address in configuration ({0})")]
    BadAddress(&'static str),
}

impl MailError {
    /// How the flow should speak about this failure.
    pub fn outcome(&self) -> Outcome {
        match self {
            MailError::MissingField(_) => Outcome::Rejected,
            _ => Outcome::Internal,
        }
    }
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Field(String),
}

/// A parsed `{field}` template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; `known` lists the allowed field names.
    pub fn parse(text: &str, known: &[&str]) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut buf = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    buf.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    buf.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) if c.is_ascii_alphanumeric() || c == '_' => name.push(c),
                            _ => return Err(format!("unclosed or invalid field after `{{{name}`")),
                        }
                    }
                    if !known.contains(&name.as_str()) {
                        return Err(format!(
                            "unknown field `{{{name}}}` (known: {})",
                            known.join(", ")
                        ));
                    }
                    if !buf.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut buf)));
                    }
                    pieces.push(Piece::Field(name));
                }
                '}' => return Err("stray `}` (write `}}` for a literal brace)".into()),
                c => buf.push(c),
            }
        }
        if !buf.is_empty() {
            pieces.push(Piece::Text(buf));
        }
        Ok(Self { pieces })
    }

    /// Substitutes `values`; a field without a value renders as `-`.
    pub fn render(&self, values: &HashMap<&str, String>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => {
                    out.push_str(values.get(f.as_str()).map(String::as_str).unwrap_or("-"))
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
struct SubjectBody {
    subject: Template,
    body: Template,
}

/// Templates by (municipality or `*`, kind, language).
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    map: HashMap<(String, MailKind, Lang), SubjectBody>,
}

const DA_CANCEL_SUBJECT: &str = "Aflysning af aftale {appointment} ({call_ref})";
const DA_CANCEL_BODY: &str = "Hej\n\nEn borger har ringet til jobcentret og aflyst sin aftale.\n\n\
Navn: {caller_name}\nCPR-nummer: {cpr}\nFødselsdato: {birth_date}\nAftale: {appointment}\n\
Opkaldet kom: {called_at}\nOpkaldsreference: {call_ref}\n\n\
Denne besked er sendt automatisk af telefonrobotten.\n";
const EN_CANCEL_SUBJECT: &str = "Appointment cancelled: {appointment} ({call_ref})";
const EN_CANCEL_BODY: &str =
    "Hello\n\nA citizen called the job centre and cancelled their appointment.\n\n\
Name: {caller_name}\nCPR number: {cpr}\nDate of birth: {birth_date}\nAppointment: {appointment}\n\
Call received: {called_at}\nCall reference: {call_ref}\n\n\
This message was sent automatically by the voice assistant.\n";
const DA_MSG_SUBJECT: &str = "Besked uden for åbningstid til {department} ({call_ref})";
const DA_MSG_BODY: &str = "Hej\n\nEn borger har lagt en besked uden for åbningstid.\n\n\
Afdeling: {department}\nNavn: {caller_name}\nTelefon: {phone}\nBesked: {message}\n\
Opkaldet kom: {called_at}\nOpkaldsreference: {call_ref}\n\n\
Denne besked er sendt automatisk af telefonrobotten.\n";
const EN_MSG_SUBJECT: &str = "Out-of-hours message for {department} ({call_ref})";
const EN_MSG_BODY: &str = "Hello\n\nA citizen left a message outside opening hours.\n\n\
Department: {department}\nName: {caller_name}\nPhone: {phone}\nMessage: {message}\n\
Call received: {called_at}\nCall reference: {call_ref}\n\n\
This message was sent automatically by the voice assistant.\n";

impl TemplateSet {
    /// The built-in Danish and English templates for every kind.
    pub fn builtin() -> Self {
        let mut s = Self::default();
        let all = [
            (
                MailKind::JobcentreCancellation,
                Lang::Da,
                DA_CANCEL_SUBJECT,
                DA_CANCEL_BODY,
            ),
            (
                MailKind::JobcentreCancellation,
                Lang::En,
                EN_CANCEL_SUBJECT,
                EN_CANCEL_BODY,
            ),
            (
                MailKind::OutOfHoursMessage,
                Lang::Da,
                DA_MSG_SUBJECT,
                DA_MSG_BODY,
            ),
            (
                MailKind::OutOfHoursMessage,
                Lang::En,
                EN_MSG_SUBJECT,
                EN_MSG_BODY,
            ),
        ];
        for (kind, lang, subject, body) in all {
            // The built-ins are tested to parse; a failure here is a bug.
            s.insert("*", kind, lang, subject, body)
                .expect("built-in mail templates parse");
        }
        s
    }

    /// Adds or replaces the template for `municipality` (`*` = every
    /// municipality without its own), `kind` and `lang`.
    pub fn insert(
        &mut self,
        municipality: &str,
        kind: MailKind,
        lang: Lang,
        subject: &str,
        body: &str,
    ) -> Result<(), MailError> {
        let bad = |reason: String| MailError::BadTemplate {
            municipality: municipality.to_string(),
            kind: kind.as_str(),
            lang: lang.code(),
            reason,
        };
        let subject =
            Template::parse(subject, kind.fields()).map_err(|r| bad(format!("subject: {r}")))?;
        let body = Template::parse(body, kind.fields()).map_err(|r| bad(format!("body: {r}")))?;
        self.map.insert(
            (municipality.to_string(), kind, lang),
            SubjectBody { subject, body },
        );
        Ok(())
    }

    fn get(&self, municipality: &str, kind: MailKind, lang: Lang) -> Option<&SubjectBody> {
        self.map
            .get(&(municipality.to_string(), kind, lang))
            .or_else(|| self.map.get(&("*".to_string(), kind, lang)))
    }
}

/// "tirsdag den 3. december 2026 kl. 10:30" / "Tuesday 3 December 2026 at 10:30".
pub fn format_datetime(t: NaiveDateTime, lang: Lang) -> String {
    let (weekday, month) = (weekday_name(lang, &t), month_name(lang, &t));
    let (day, year, hour, minute) = (t.day(), t.year(), t.hour(), t.minute());
    match lang {
        Lang::Da => format!("{weekday} den {day}. {month} {year} kl. {hour:02}:{minute:02}"),
        _ => format!("{weekday} {day} {month} {year} at {hour:02}:{minute:02}"),
    }
}

/// "3. december 1990" / "3 December 1990".
pub fn format_date(d: NaiveDate, lang: Lang) -> String {
    let month = month_name(lang, &d);
    match lang {
        Lang::Da => format!("{}. {month} {}", d.day(), d.year()),
        _ => format!("{} {month} {}", d.day(), d.year()),
    }
}

/// A composed mail, ready for the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMail {
    /// Idempotency key (`{call_ref}:{kind}`), also the Message-ID's local part.
    pub key: String,
    /// Municipality id.
    pub municipality: String,
    /// Kind.
    pub kind: MailKind,
    /// Sender address.
    pub from: String,
    /// Recipient address (the job-centre or department mailbox).
    pub to: String,
    /// Subject line (may hold personal data: the name is not used in the
    /// built-in subjects, but a template could).
    pub subject: Pii<String>,
    /// Plain-text body (holds personal data).
    pub body: Pii<String>,
}

/// Recipients of one municipality (`[integrations.mail.recipients.ID]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipients {
    /// Job-centre mailbox for cancellations.
    pub jobcentre: Option<String>,
    /// Mailbox for out-of-hours messages per department id; `*` = any other.
    #[serde(default)]
    pub departments: HashMap<String, String>,
}

/// Builds mails from fields and templates.
#[derive(Debug, Clone)]
pub struct MailComposer {
    templates: TemplateSet,
    cpr_mask: CprMask,
    from: String,
    recipients: HashMap<String, Recipients>,
}

impl MailComposer {
    /// A composer; `from` and every recipient must be valid addresses.
    pub fn new(
        templates: TemplateSet,
        cpr_mask: CprMask,
        from: &str,
        recipients: HashMap<String, Recipients>,
    ) -> Result<Self, MailError> {
        let valid = |a: &str| a.parse::<lettre::message::Mailbox>().is_ok();
        if !valid(from) {
            return Err(MailError::BadAddress("from"));
        }
        for r in recipients.values() {
            if r.jobcentre.as_deref().is_some_and(|a| !valid(a))
                || r.departments.values().any(|a| !valid(a))
            {
                return Err(MailError::BadAddress("recipients"));
            }
        }
        Ok(Self {
            templates,
            cpr_mask,
            from: from.to_string(),
            recipients,
        })
    }

    /// Composes the mail of `kind` for `fields`.
    pub fn compose(&self, kind: MailKind, f: &MailFields) -> Result<OutgoingMail, MailError> {
        let rec = self.recipients.get(&f.municipality);
        let no_recipient = || MailError::NoRecipient {
            municipality: f.municipality.clone(),
            kind: kind.as_str(),
        };
        let to = match kind {
            MailKind::JobcentreCancellation => {
                if f.caller_name.is_none() {
                    return Err(MailError::MissingField("caller_name"));
                }
                if f.cpr.is_none() && f.birth_date.is_none() {
                    return Err(MailError::MissingField("cpr or birth_date"));
                }
                if f.appointment.is_none() {
                    return Err(MailError::MissingField("appointment"));
                }
                rec.and_then(|r| r.jobcentre.clone())
                    .ok_or_else(no_recipient)?
            }
            MailKind::OutOfHoursMessage => {
                let dept = f
                    .department
                    .as_deref()
                    .ok_or(MailError::MissingField("department"))?;
                rec.and_then(|r| {
                    r.departments
                        .get(dept)
                        .or_else(|| r.departments.get("*"))
                        .cloned()
                })
                .ok_or_else(no_recipient)?
            }
        };
        let t = self
            .templates
            .get(&f.municipality, kind, f.lang)
            .ok_or(MailError::NoTemplate {
                kind: kind.as_str(),
                lang: f.lang.code(),
            })?;
        let mut v: HashMap<&str, String> = HashMap::new();
        v.insert("call_ref", f.call_ref.to_string());
        v.insert("municipality", f.municipality.clone());
        v.insert(
            "called_at",
            format_datetime(f.called_at.with_timezone(&Copenhagen).naive_local(), f.lang),
        );
        if let Some(n) = &f.caller_name {
            v.insert("caller_name", n.expose().clone());
        }
        if let Some(c) = &f.cpr {
            v.insert("cpr", self.cpr_mask.apply(c, f.lang));
        }
        if let Some(d) = f.birth_date {
            v.insert("birth_date", format_date(d, f.lang));
        }
        if let Some(p) = &f.phone {
            v.insert("phone", p.expose().clone());
        }
        if let Some(a) = f.appointment {
            v.insert("appointment", format_datetime(a, f.lang));
        }
        if let Some(d) = &f.department {
            v.insert("department", d.clone());
        }
        if let Some(m) = &f.message {
            v.insert("message", m.expose().clone());
        }
        Ok(OutgoingMail {
            key: format!("{}:{}", f.call_ref, kind.as_str()),
            municipality: f.municipality.clone(),
            kind,
            from: self.from.clone(),
            to,
            subject: Pii::new(t.subject.render(&v).replace(['\r', '\n'], " ")),
            body: Pii::new(t.body.render(&v)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fields(lang: Lang) -> MailFields {
        MailFields {
            call_ref: CallId::new("c00000000000000ab"),
            municipality: "aarhus".into(),
            lang,
            called_at: Utc.with_ymd_and_hms(2026, 11, 23, 21, 5, 0).unwrap(),
            caller_name: Some(Pii::new("Jens Hansen".into())),
            cpr: Some(Pii::new("010190-1234".into())),
            birth_date: None,
            phone: None,
            appointment: NaiveDate::from_ymd_opt(2026, 12, 3)
                .unwrap()
                .and_hms_opt(10, 30, 0),
            department: None,
            message: None,
        }
    }

    fn composer(mask: CprMask) -> MailComposer {
        let mut r = HashMap::new();
        r.insert(
            "aarhus".to_string(),
            Recipients {
                jobcentre: Some("jobcenter@aarhus.example".into()),
                departments: HashMap::new(),
            },
        );
        MailComposer::new(TemplateSet::builtin(), mask, "ivr@kommune.example", r).unwrap()
    }

    #[test]
    fn cancellation_in_danish_masks_the_cpr_and_speaks_local_time() {
        let m = composer(CprMask::BirthDate)
            .compose(MailKind::JobcentreCancellation, &fields(Lang::Da))
            .unwrap();
        let body = m.body.expose();
        assert!(body.contains("Navn: Jens Hansen"), "{body}");
        assert!(body.contains("CPR-nummer: 010190-XXXX"), "{body}");
        assert!(!body.contains("1234"), "{body}");
        assert!(
            body.contains("Aftale: torsdag den 3. december 2026 kl. 10:30"),
            "{body}"
        );
        // 21:05 UTC in November is 22:05 in Copenhagen.
        assert!(
            body.contains("Opkaldet kom: mandag den 23. november 2026 kl. 22:05"),
            "{body}"
        );
        assert!(body.contains("Fødselsdato: -"), "{body}");
        assert_eq!(
            m.subject.expose(),
            "Aflysning af aftale torsdag den 3. december 2026 kl. 10:30 (c00000000000000ab)"
        );
        assert_eq!(
            (m.to.as_str(), m.key.as_str()),
            (
                "jobcenter@aarhus.example",
                "c00000000000000ab:jobcentre_cancellation"
            )
        );
    }

    #[test]
    fn cancellation_in_english_with_full_or_hidden_cpr() {
        let f = fields(Lang::En);
        let full = composer(CprMask::Full)
            .compose(MailKind::JobcentreCancellation, &f)
            .unwrap();
        assert!(full.body.expose().contains("CPR number: 010190-1234"));
        assert!(full
            .body
            .expose()
            .contains("Appointment: Thursday 3 December 2026 at 10:30"));
        let hidden = composer(CprMask::Hidden)
            .compose(MailKind::JobcentreCancellation, &f)
            .unwrap();
        assert!(hidden.body.expose().contains("CPR number: (omitted)"));
    }

    #[test]
    fn cpr_masking_refuses_what_is_not_ten_digits() {
        let odd = Pii::new("01019x1234".to_string());
        assert_eq!(CprMask::Full.apply(&odd, Lang::Da), "(udeladt)");
        assert_eq!(
            CprMask::BirthDate.apply(&Pii::new("0101 90 1234".into()), Lang::Da),
            "010190-XXXX"
        );
    }

    #[test]
    fn a_municipality_template_overrides_the_default_and_bad_templates_fail_at_load() {
        let mut t = TemplateSet::builtin();
        t.insert(
            "aarhus",
            MailKind::JobcentreCancellation,
            Lang::Da,
            "Aflyst {{{call_ref}}}",
            "Borger {caller_name} aflyser.",
        )
        .unwrap();
        let mut c = composer(CprMask::BirthDate);
        c.templates = t.clone();
        let m = c
            .compose(MailKind::JobcentreCancellation, &fields(Lang::Da))
            .unwrap();
        assert_eq!(m.subject.expose(), "Aflyst {c00000000000000ab}");
        assert_eq!(m.body.expose(), "Borger Jens Hansen aflyser.");
        let e = t
            .insert(
                "odense",
                MailKind::JobcentreCancellation,
                Lang::Da,
                "{navn}",
                "x",
            )
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `{navn}`"), "{e}");
        assert!(t
            .insert(
                "odense",
                MailKind::OutOfHoursMessage,
                Lang::En,
                "x } y",
                "x"
            )
            .is_err());
    }

    #[test]
    fn missing_fields_and_recipients_are_reported_not_sent() {
        let c = composer(CprMask::BirthDate);
        let mut f = fields(Lang::Da);
        f.appointment = None;
        assert!(matches!(
            c.compose(MailKind::JobcentreCancellation, &f),
            Err(MailError::MissingField("appointment"))
        ));
        let mut f = fields(Lang::Da);
        f.municipality = "odense".into();
        assert!(matches!(
            c.compose(MailKind::JobcentreCancellation, &f),
            Err(MailError::NoRecipient { .. })
        ));
        let mut f = fields(Lang::Da);
        f.department = Some("teknik".into());
        assert!(matches!(
            c.compose(MailKind::OutOfHoursMessage, &f),
            Err(MailError::NoRecipient { .. })
        ));
    }

    #[test]
    fn a_header_injection_through_a_field_stays_on_the_subject_line() {
        let mut t = TemplateSet::builtin();
        t.insert(
            "aarhus",
            MailKind::JobcentreCancellation,
            Lang::Da,
            "Aflysning {caller_name}",
            "x",
        )
        .unwrap();
        let mut c = composer(CprMask::BirthDate);
        c.templates = t;
        let mut f = fields(Lang::Da);
        f.caller_name = Some(Pii::new("Jens\r\nBcc: evil@example.com".into()));
        let m = c.compose(MailKind::JobcentreCancellation, &f).unwrap();
        assert!(!m.subject.expose().contains('\n'));
    }
}
