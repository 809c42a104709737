//! The context that travels with a transfer to a Puzzel queue, so the agent
//! does not ask again: call reference, intent, language, department and the
//! fields the flow collected, as SIP headers in one of two forms.
//!
//! - **User-to-User** (RFC 7433 sec. 4.1): `User-to-User: <hex>;encoding=hex;purpose=<p>[;content=<c>]`.
//!   The data before hex encoding is `key=value` pairs joined by `&`, values
//!   percent-encoded (RFC 3986 sec. 2.1), e.g. `ref=c1&lang=da&intent=pas`.
//!   The data is limited to `max_bytes` octets (default 128, the ISDN UUI
//!   size that gateways and contact-centre platforms commonly keep).
//! - **X- headers**: one header per field (`X-IVR-Intent: pas`), names
//!   configurable, values percent-encoded outside printable ASCII and for
//!   `%`, `;` and `,` (so no value can split or extend a header, RFC 3261
//!   sec. 7.3.1), each value at most `max_value_bytes`, all together at most
//!   `max_total_bytes`.
//!
//! Truncation policy (both forms): fields go in priority order (call
//! reference, intent, language, department, then collected fields in the
//! order the flow gave them). A field that does not fit is left out whole
//! (never cut in the middle of a UUI value) and named in
//! [`TransferHeaders::dropped`]; smaller later fields may still go in. In
//! the X- form a value longer than `max_value_bytes` is cut at a character
//! boundary and named in [`TransferHeaders::truncated`]. The call reference
//! always goes in; if even it does not fit, that is an error.
//!
//! Personal data ([`ContextValue::Personal`]: name, CPR, phone) is left out
//! unless its field name is listed in `include_personal`.

use std::collections::HashMap;

use ivr_core::{CallId, Lang, Pii};
use serde::Deserialize;

/// A collected value.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    /// Not personal (case type, queue name, a yes/no).
    Plain(String),
    /// Personal data: only sent when configured for this field.
    Personal(Pii<String>),
}

/// What the engine knows at the moment of transfer.
#[derive(Debug, Clone, PartialEq)]
pub struct TransferContext {
    /// The call.
    pub call_ref: CallId,
    /// Recognised intent (`pas`, `boligstoette`).
    pub intent: Option<String>,
    /// Conversation language.
    pub lang: Lang,
    /// Target department.
    pub department: Option<String>,
    /// Collected fields in priority order, by name.
    pub fields: Vec<(String, ContextValue)>,
}

/// Which header form (`[integrations.transfer] form`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferForm {
    /// One `User-to-User` header (RFC 7433), hex encoded.
    #[default]
    UserToUser,
    /// One X- header per field.
    XHeaders,
}

/// Settings of the transfer context (`[integrations.transfer]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// Header form.
    pub form: TransferForm,
    /// `purpose` parameter of User-to-User.
    pub uui_purpose: String,
    /// `content` parameter of User-to-User (left out when empty).
    pub uui_content: String,
    /// Longest UUI data before hex encoding, in octets.
    pub uui_max_bytes: usize,
    /// Prefix of X- header names made from field names (`X-IVR-`).
    pub x_prefix: String,
    /// Header name per field, overriding the prefix rule
    /// (`intent = "X-Puzzel-Intent"`).
    pub x_names: HashMap<String, String>,
    /// Longest X- header value, in octets after encoding.
    pub x_max_value_bytes: usize,
    /// Longest sum of X- header lines (`Name: value`), in octets.
    pub x_max_total_bytes: usize,
    /// Personal fields that may be sent (e.g. `["name"]`); others are left out.
    pub include_personal: Vec<String>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            form: TransferForm::UserToUser,
            uui_purpose: "isdn-uui".into(),
            uui_content: String::new(),
            uui_max_bytes: 128,
            x_prefix: "X-IVR-".into(),
            x_names: HashMap::new(),
            x_max_value_bytes: 256,
            x_max_total_bytes: 1024,
            include_personal: Vec::new(),
        }
    }
}

/// Errors building the headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A configured or derived header name is not a SIP token (RFC 3261 sec. 25.1).
    #[error("`{0}` is not a valid SIP header name")]
    BadHeaderName(String),
    /// A UUI parameter is not a SIP token.
    #[error("UUI {0} parameter is not a SIP token")]
    BadParameter(&'static str),
    /// The limit is too small even for the call reference.
    #[error("the header size limit is too small for the call reference")]
    LimitTooSmall,
}

/// The headers to add to the transfer (REFER's Refer-To or the INVITE).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferHeaders {
    /// `(name, value)` pairs, in order.
    pub headers: Vec<(String, String)>,
    /// Fields left out because they did not fit.
    pub dropped: Vec<String>,
    /// Fields cut to fit (X- form only).
    pub truncated: Vec<String>,
    /// Personal fields left out by policy.
    pub withheld: Vec<String>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        })
}

/// Percent-encodes everything outside unreserved characters (RFC 3986 sec. 2.3).
fn pct_strict(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-encodes what is unsafe in a header value: controls, non-ASCII,
/// `%`, `;`, `,` and `"`.
fn pct_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && !matches!(b, b'%' | b';' | b',' | b'"') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hex_upper(data: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(data.len() * 2);
    for b in data {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

/// Title-cases a field name for a header: `case_type` -> `Case-Type`.
fn header_word(field: &str) -> String {
    field
        .split(['_', '-'])
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

impl TransferConfig {
    /// Checks names and parameters (call at configuration load).
    pub fn validate(&self) -> Result<(), TransferError> {
        if !is_token(&self.uui_purpose) {
            return Err(TransferError::BadParameter("purpose"));
        }
        if !self.uui_content.is_empty() && !is_token(&self.uui_content) {
            return Err(TransferError::BadParameter("content"));
        }
        for n in self.x_names.values() {
            if !is_token(n) {
                return Err(TransferError::BadHeaderName(n.clone()));
            }
        }
        if !self.x_prefix.is_empty() && !is_token(&self.x_prefix) {
            return Err(TransferError::BadHeaderName(self.x_prefix.clone()));
        }
        Ok(())
    }

    /// The fields to send, in priority order, personal ones filtered.
    fn fields(&self, ctx: &TransferContext, withheld: &mut Vec<String>) -> Vec<(String, String)> {
        let mut v = vec![("ref".to_string(), ctx.call_ref.to_string())];
        if let Some(i) = &ctx.intent {
            v.push(("intent".into(), i.clone()));
        }
        v.push(("lang".into(), ctx.lang.code().to_string()));
        if let Some(d) = &ctx.department {
            v.push(("dept".into(), d.clone()));
        }
        for (name, value) in &ctx.fields {
            match value {
                ContextValue::Plain(s) => v.push((name.clone(), s.clone())),
                ContextValue::Personal(p) if self.include_personal.iter().any(|n| n == name) => {
                    v.push((name.clone(), p.expose().clone()))
                }
                ContextValue::Personal(_) => withheld.push(name.clone()),
            }
        }
        v
    }

    /// Builds the headers for `ctx` in the configured form.
    pub fn build(&self, ctx: &TransferContext) -> Result<TransferHeaders, TransferError> {
        self.validate()?;
        let mut out = TransferHeaders::default();
        let fields = self.fields(ctx, &mut out.withheld);
        match self.form {
            TransferForm::UserToUser => self.build_uui(fields, out),
            TransferForm::XHeaders => self.build_x(fields, out),
        }
    }

    fn build_uui(
        &self,
        fields: Vec<(String, String)>,
        mut out: TransferHeaders,
    ) -> Result<TransferHeaders, TransferError> {
        let mut data = String::new();
        for (i, (k, v)) in fields.iter().enumerate() {
            let pair = format!("{}={}", pct_strict(k), pct_strict(v));
            let extra = if data.is_empty() {
                pair.len()
            } else {
                pair.len() + 1
            };
            if data.len() + extra > self.uui_max_bytes {
                if i == 0 {
                    return Err(TransferError::LimitTooSmall);
                }
                out.dropped.push(k.clone());
                continue;
            }
            if !data.is_empty() {
                data.push('&');
            }
            data.push_str(&pair);
        }
        let mut value = format!(
            "{};encoding=hex;purpose={}",
            hex_upper(data.as_bytes()),
            self.uui_purpose
        );
        if !self.uui_content.is_empty() {
            value.push_str(";content=");
            value.push_str(&self.uui_content);
        }
        out.headers.push(("User-to-User".into(), value));
        Ok(out)
    }

    fn build_x(
        &self,
        fields: Vec<(String, String)>,
        mut out: TransferHeaders,
    ) -> Result<TransferHeaders, TransferError> {
        let mut total = 0usize;
        for (i, (k, v)) in fields.iter().enumerate() {
            let name = match self.x_names.get(k) {
                Some(n) => n.clone(),
                None => format!(
                    "{}{}",
                    self.x_prefix,
                    header_word(if k == "ref" { "call_ref" } else { k })
                ),
            };
            if !is_token(&name) {
                return Err(TransferError::BadHeaderName(name));
            }
            let mut value = pct_header(v);
            if value.len() > self.x_max_value_bytes {
                // Cut the raw value at a character boundary until it fits encoded.
                let mut raw: &str = v;
                while pct_header(raw).len() > self.x_max_value_bytes {
                    let mut cut = raw.len().saturating_sub(1);
                    while cut > 0 && !raw.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    raw = &raw[..cut];
                }
                if i == 0 {
                    return Err(TransferError::LimitTooSmall);
                }
                value = pct_header(raw);
                out.truncated.push(k.clone());
            }
            let line = name.len() + 2 + value.len();
            if total + line > self.x_max_total_bytes {
                if i == 0 {
                    return Err(TransferError::LimitTooSmall);
                }
                out.dropped.push(k.clone());
                continue;
            }
            total += line;
            out.headers.push((name, value));
        }
        Ok(out)
    }
}

/// Decodes UUI data written by [`TransferConfig::build`] (hex, then the
/// `key=value&...` pairs), for tests and for a receiving side in the engine.
pub fn decode_uui(value: &str) -> Option<Vec<(String, String)>> {
    let hex = value.split(';').next()?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let unpct = |s: &str| -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    };
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((unpct(k)?, unpct(v)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TransferContext {
        TransferContext {
            call_ref: CallId::new("c00000000000000ab"),
            intent: Some("pas".into()),
            lang: Lang::Da,
            department: Some("borgerservice".into()),
            fields: vec![
                (
                    "case_type".into(),
                    ContextValue::Plain("fornyelse af pas".into()),
                ),
                (
                    "name".into(),
                    ContextValue::Personal(Pii::new("Søren Ærø".into())),
                ),
                (
                    "cpr".into(),
                    ContextValue::Personal(Pii::new("0101901234".into())),
                ),
            ],
        }
    }

    #[test]
    fn user_to_user_is_hex_with_purpose_and_round_trips() {
        let h = TransferConfig::default().build(&ctx()).unwrap();
        assert_eq!(h.headers.len(), 1);
        let (name, value) = &h.headers[0];
        assert_eq!(name, "User-to-User");
        assert!(value.ends_with(";encoding=hex;purpose=isdn-uui"), "{value}");
        let hex = value.split(';').next().unwrap();
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{hex}");
        let pairs = decode_uui(value).unwrap();
        assert_eq!(
            pairs,
            vec![
                ("ref".to_string(), "c00000000000000ab".to_string()),
                ("intent".into(), "pas".into()),
                ("lang".into(), "da".into()),
                ("dept".into(), "borgerservice".into()),
                ("case_type".into(), "fornyelse af pas".into()),
            ]
        );
        // Personal data stays out unless configured.
        assert_eq!(h.withheld, vec!["name".to_string(), "cpr".to_string()]);
        assert!(h.dropped.is_empty());
    }

    #[test]
    fn personal_fields_go_only_when_configured_per_field() {
        let cfg = TransferConfig {
            include_personal: vec!["name".into()],
            uui_max_bytes: 256,
            ..Default::default()
        };
        let h = cfg.build(&ctx()).unwrap();
        let pairs = decode_uui(&h.headers[0].1).unwrap();
        assert!(
            pairs.contains(&("name".to_string(), "Søren Ærø".to_string())),
            "{pairs:?}"
        );
        assert!(!pairs.iter().any(|(k, _)| k == "cpr"));
        assert_eq!(h.withheld, vec!["cpr".to_string()]);
    }

    #[test]
    fn uui_limit_drops_whole_fields_in_priority_order() {
        let cfg = TransferConfig {
            uui_max_bytes: 48,
            uui_content: "ivr".into(),
            ..Default::default()
        };
        let h = cfg.build(&ctx()).unwrap();
        let pairs = decode_uui(&h.headers[0].1).unwrap();
        let data_len: usize = h.headers[0].1.split(';').next().unwrap().len() / 2;
        assert!(data_len <= 48, "{data_len}");
        // ref=c00000000000000ab&intent=pas&lang=da = 39 bytes; dept (18) does
        // not fit, nor case_type.
        assert_eq!(
            pairs.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(),
            ["ref", "intent", "lang"]
        );
        assert_eq!(h.dropped, vec!["dept".to_string(), "case_type".to_string()]);
        assert!(h.headers[0].1.ends_with(";purpose=isdn-uui;content=ivr"));
        let tiny = TransferConfig {
            uui_max_bytes: 10,
            ..Default::default()
        };
        assert_eq!(
            tiny.build(&ctx()).unwrap_err(),
            TransferError::LimitTooSmall
        );
    }

    #[test]
    fn x_headers_have_configured_names_and_safe_values() {
        let mut names = HashMap::new();
        names.insert("intent".to_string(), "X-Puzzel-Intent".to_string());
        let mut c = ctx();
        c.fields.push((
            "note".into(),
            ContextValue::Plain("a;b,c\r\nVia: evil".into()),
        ));
        let cfg = TransferConfig {
            form: TransferForm::XHeaders,
            x_names: names,
            ..Default::default()
        };
        let h = cfg.build(&c).unwrap();
        let get = |n: &str| {
            h.headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("X-IVR-Call-Ref"), Some("c00000000000000ab"));
        assert_eq!(get("X-Puzzel-Intent"), Some("pas"));
        assert_eq!(get("X-IVR-Lang"), Some("da"));
        assert_eq!(get("X-IVR-Dept"), Some("borgerservice"));
        assert_eq!(get("X-IVR-Case-Type"), Some("fornyelse af pas"));
        assert_eq!(
            get("X-IVR-Note"),
            Some("a%3Bb%2Cc%0D%0AVia: evil"),
            "no CR/LF, ; or , in a value"
        );
        assert!(
            get("X-IVR-Name").is_none() && get("X-IVR-Cpr").is_none(),
            "personal data withheld"
        );
    }

    #[test]
    fn x_header_values_are_cut_at_character_boundaries_and_the_total_is_bounded() {
        let mut c = ctx();
        c.fields = vec![("case_type".into(), ContextValue::Plain("æøå".repeat(20)))];
        let cfg = TransferConfig {
            form: TransferForm::XHeaders,
            x_max_value_bytes: 20,
            ..Default::default()
        };
        let h = cfg.build(&c).unwrap();
        let v = &h
            .headers
            .iter()
            .find(|(k, _)| k == "X-IVR-Case-Type")
            .unwrap()
            .1;
        assert!(v.len() <= 20, "{v}");
        assert_eq!(
            v, "%C3%A6%C3%B8%C3%A5",
            "three whole characters (18 bytes), no half UTF-8 sequence"
        );
        assert_eq!(h.truncated, vec!["case_type".to_string()]);

        let small = TransferConfig {
            form: TransferForm::XHeaders,
            x_max_total_bytes: 60,
            ..Default::default()
        };
        let h = small.build(&ctx()).unwrap();
        let total: usize = h.headers.iter().map(|(k, v)| k.len() + 2 + v.len()).sum();
        assert!(total <= 60, "{total}");
        assert_eq!(h.headers[0].0, "X-IVR-Call-Ref");
        assert!(!h.dropped.is_empty());
    }

    #[test]
    fn invalid_header_names_and_parameters_are_refused() {
        let mut names = HashMap::new();
        names.insert("intent".to_string(), "X Bad:Name".to_string());
        let cfg = TransferConfig {
            form: TransferForm::XHeaders,
            x_names: names,
            ..Default::default()
        };
        assert!(matches!(
            cfg.validate(),
            Err(TransferError::BadHeaderName(_))
        ));
        let cfg = TransferConfig {
            uui_purpose: "a;b".into(),
            ..Default::default()
        };
        assert_eq!(cfg.validate(), Err(TransferError::BadParameter("purpose")));
        let mut c = ctx();
        c.fields = vec![("bad name".into(), ContextValue::Plain("x".into()))];
        let cfg = TransferConfig {
            form: TransferForm::XHeaders,
            ..Default::default()
        };
        assert!(matches!(
            cfg.build(&c),
            Err(TransferError::BadHeaderName(_))
        ));
    }
}
