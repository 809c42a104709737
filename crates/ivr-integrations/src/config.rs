//! The `[integrations]` section of the engine configuration. Every struct
//! rejects unknown keys and has defaults, so a minimal section works and a
//! typo is an error naming the key. The commented example is in
//! `config/default.toml`.

use std::collections::HashMap;

use ivr_core::Lang;
use serde::Deserialize;

use crate::{
    frontdesk::FrontdeskConfig,
    mail::{CprMask, MailComposer, MailError, MailKind, Recipients, TemplateSet},
    outbox::{DeliveryPolicy, SmtpConfig},
    puzzel::PuzzelConfig,
    transfer::{TransferConfig, TransferError},
};

/// `[integrations]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `sqlite:var/ivr.db` (embedded, the default) or
    /// `postgres://user:password@host:5432/ivr` (several engine instances).
    pub database_url: String,
    /// `[integrations.callbacks]`.
    pub callbacks: CallbacksConfig,
    /// `[integrations.puzzel]`: callback web API.
    pub puzzel: PuzzelConfig,
    /// `[integrations.mail]`.
    pub mail: MailConfig,
    /// `[integrations.frontdesk]`.
    pub frontdesk: FrontdeskConfig,
    /// `[integrations.transfer]`: context headers of a transfer.
    pub transfer: TransferConfig,
    /// Days a served callback request or a sent mail is kept before it is
    /// deleted (personal data); 0 keeps them forever.
    pub retention_days: u32,
}

impl std::fmt::Debug for Config {
    /// The database URL without its password (`postgres://ivr:<secret>@db/ivr`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("callbacks", &self.callbacks)
            .field("puzzel", &self.puzzel)
            .field("mail", &self.mail)
            .field("frontdesk", &self.frontdesk)
            .field("transfer", &self.transfer)
            .field("retention_days", &self.retention_days)
            .finish()
    }
}

/// `scheme://user:password@host/...` with the password replaced.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(x) => x,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<secret>@{host}"),
        None => url.to_string(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite:var/ivr.db".into(),
            callbacks: CallbacksConfig::default(),
            puzzel: PuzzelConfig::default(),
            mail: MailConfig::default(),
            frontdesk: FrontdeskConfig::default(),
            transfer: TransferConfig::default(),
            retention_days: 30,
        }
    }
}

/// `[integrations.callbacks]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbacksConfig {
    /// Hand requests off to Puzzel. `false`: the centre works the queue
    /// itself from the list/export.
    pub handoff: bool,
    /// How often the hand-off worker looks for due requests, in milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        Self {
            handoff: true,
            poll_interval_ms: 5_000,
        }
    }
}

/// A template replacing the built-in one for a municipality.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateOverride {
    /// Municipality id, or `*` for all.
    pub municipality: String,
    /// Mail kind.
    pub kind: MailKind,
    /// Language.
    pub lang: Lang,
    /// Subject template (`{field}` substitution).
    pub subject: String,
    /// Body template.
    pub body: String,
}

/// `[integrations.mail]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Sender (`Telefonrobot <ivr@kommune.dk>`).
    pub from: String,
    /// How CPR numbers appear in mails.
    pub cpr_mask: CprMask,
    /// `[integrations.mail.smtp]`.
    pub smtp: SmtpConfig,
    /// `[integrations.mail.delivery]`.
    pub delivery: DeliveryPolicy,
    /// `[integrations.mail.recipients.<municipality>]`.
    pub recipients: HashMap<String, Recipients>,
    /// `[[integrations.mail.templates]]`.
    pub templates: Vec<TemplateOverride>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            from: "ivr@localhost".into(),
            cpr_mask: CprMask::BirthDate,
            smtp: SmtpConfig::default(),
            delivery: DeliveryPolicy::default(),
            recipients: HashMap::new(),
            templates: Vec::new(),
        }
    }
}

impl MailConfig {
    /// The composer: built-in templates plus the overrides, checked.
    pub fn composer(&self) -> Result<MailComposer, MailError> {
        let mut t = TemplateSet::builtin();
        for o in &self.templates {
            t.insert(&o.municipality, o.kind, o.lang, &o.subject, &o.body)?;
        }
        MailComposer::new(t, self.cpr_mask, &self.from, self.recipients.clone())
    }
}

/// A configuration that parses but cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Mail templates, sender or recipients.
    #[error("[integrations.mail]: {0}")]
    Mail(#[from] MailError),
    /// Transfer header names or parameters.
    #[error("[integrations.transfer]: {0}")]
    Transfer(#[from] TransferError),
    /// A URL that is not one.
    #[error("[integrations] {0} is not a valid URL")]
    BadUrl(&'static str),
}

impl Config {
    /// Checks what serde cannot: templates, addresses, header names, URLs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.mail.composer()?;
        self.transfer.validate()?;
        if reqwest::Url::parse(&self.puzzel.base_url).is_err() {
            return Err(ConfigError::BadUrl("puzzel.base_url"));
        }
        if reqwest::Url::parse(&self.frontdesk.base_url).is_err() {
            return Err(ConfigError::BadUrl("frontdesk.base_url"));
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(ConfigError::BadUrl("database_url"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_password_never_prints() {
        let c: Config =
            toml::from_str("database_url = \"postgres://ivr:hunter2@db.example:5432/ivr\"\n")
                .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://ivr:<secret>@db.example:5432/ivr"),
            "{shown}"
        );
    }

    #[test]
    fn an_empty_section_gives_working_defaults() {
        let c: Config = toml::from_str("").unwrap();
        assert_eq!(c.database_url, "sqlite:var/ivr.db");
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let e = toml::from_str::<Config>("[mail.smtp]\nhots = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hots"), "{e}");
    }

    #[test]
    fn the_example_in_config_default_toml_parses_and_validates() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/default.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let root: toml::Table = toml::from_str(&text).unwrap();
        let section = root
            .get("integrations")
            .cloned()
            .unwrap_or(toml::Value::Table(Default::default()));
        let c: Config = section.try_into().unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn the_commented_examples_in_config_default_toml_parse_when_uncommented() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/default.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text.find("\n[integrations]\n").unwrap();
        let mut section = String::new();
        for line in text[start..].lines() {
            let uncommented = line.strip_prefix("# ").filter(|rest| {
                rest.starts_with("[integrations")
                    || rest.starts_with("[[integrations")
                    || rest
                        .split_once(" = ")
                        .is_some_and(|(k, _)| !k.contains(' '))
            });
            let line = uncommented.unwrap_or(line);
            if line.starts_with('[')
                && !line.starts_with("[integrations")
                && !line.starts_with("[[integrations")
            {
                break; // another component's section
            }
            section.push_str(line);
            section.push('\n');
        }
        let root: toml::Table =
            toml::from_str(&section).unwrap_or_else(|e| panic!("{e}\n{section}"));
        let c: Config = root["integrations"].clone().try_into().unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.mail.recipients["aarhus"].jobcentre.as_deref(),
            Some("jobcenter@aarhus.example")
        );
        assert_eq!(c.mail.templates.len(), 1);
        assert_eq!(c.transfer.x_names["intent"], "X-Puzzel-Intent");
        assert!(matches!(c.puzzel.auth, crate::puzzel::PuzzelAuth::None));
    }

    #[test]
    fn a_bad_template_fails_validation() {
        let c: Config = toml::from_str(
            "[[mail.templates]]\nmunicipality = \"aarhus\"\nkind = \"jobcentre_cancellation\"\nlang = \"da\"\nsubject = \"{navn}\"\nbody = \"x\"\n",
        )
        .unwrap();
        assert!(c.validate().unwrap_err().to_string().contains("navn"));
    }
}
