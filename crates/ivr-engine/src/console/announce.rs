//! Crisis announcements (table `crisis_announcements`): per municipality a
//! Danish and an English text with an expiry time, set or cleared in the
//! console. New calls hear it before their flow, in the call's language
//! (the other language when only one is given).
//!
//! Calls read an in-memory copy ([`Announcements`]), updated at once when an
//! announcement is set through this engine and re-read from the database
//! every [`REFRESH`] so several engines on one database agree within
//! seconds. A call takes it by getting a copy of its municipality with the
//! announcement in place of the flow's own (see
//! `ivr_flow::model::Municipality::announcement`), so the interpreter plays
//! it exactly like one written in the flow files, not interruptible.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ivr_core::Lang;
use ivr_flow::model::{Announcement as FlowAnnouncement, Part, Template, Text};
use ivr_flow::Route;
use ivr_integrations::db::Db;
use serde::{Deserialize, Serialize};

use super::on_pool;

/// How often the copy is re-read from the database.
pub const REFRESH: Duration = Duration::from_secs(2);

/// Longest announcement text, in characters.
pub const MAX_TEXT: usize = 1000;

/// One municipality's announcement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Crisis {
    /// Municipality id.
    pub municipality: String,
    /// Danish text.
    pub text_da: Option<String>,
    /// English text.
    pub text_en: Option<String>,
    /// Stops playing at this time.
    pub expires_at: DateTime<Utc>,
    /// Who set it.
    pub set_by: String,
    /// When.
    pub set_at: DateTime<Utc>,
}

impl Crisis {
    /// The text for `lang` (else the other one).
    pub fn text(&self, lang: Lang) -> Option<&str> {
        let (own, other) = match lang {
            Lang::En => (&self.text_en, &self.text_da),
            _ => (&self.text_da, &self.text_en),
        };
        own.as_deref().or(other.as_deref())
    }

    /// The texts with their languages.
    pub fn texts(&self) -> Vec<(Lang, &str)> {
        let mut v = Vec::new();
        if let Some(t) = &self.text_da {
            v.push((Lang::Da, t.as_str()));
        }
        if let Some(t) = &self.text_en {
            v.push((Lang::En, t.as_str()));
        }
        v
    }
}

/// The announcements in force, by municipality. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Announcements {
    current: Arc<RwLock<BTreeMap<String, Crisis>>>,
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS crisis_announcements (
    municipality TEXT PRIMARY KEY,
    text_da TEXT,
    text_en TEXT,
    expires_at BIGINT NOT NULL,
    set_by TEXT NOT NULL,
    set_at BIGINT NOT NULL
)";

/// Creates the table if needed.
///
/// # Errors
/// The database's.
pub async fn create_tables(db: &Db) -> Result<(), sqlx::Error> {
    on_pool!(db, p => sqlx::query(CREATE).execute(p).await.map(|r| r.rows_affected()))?;
    Ok(())
}

type Row = (String, Option<String>, Option<String>, i64, String, i64);

fn literal(text: &str) -> Template {
    Template {
        source: text.to_string(),
        parts: vec![Part::Lit(text.to_string())],
        personal: false,
    }
}

impl Announcements {
    /// `route` with the municipality's announcement in front of its flow, if
    /// one is in force at `now` (else `route` as it is).
    pub fn apply(&self, route: Route, now: DateTime<Utc>) -> Route {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        let Some(c) = current
            .get(&route.municipality.id)
            .filter(|c| c.expires_at > now)
        else {
            return route;
        };
        let text = Text(
            c.texts()
                .into_iter()
                .map(|(l, t)| (l, literal(t)))
                .collect(),
        );
        let mut m = (*route.municipality).clone();
        m.announcement = Some(FlowAnnouncement {
            text,
            until: Some(c.expires_at),
        });
        Route {
            municipality: Arc::new(m),
            entry: route.entry,
        }
    }

    /// The announcement of `m` in force at `now`.
    pub fn get(&self, m: &str, now: DateTime<Utc>) -> Option<Crisis> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(m)
            .filter(|c| c.expires_at > now)
            .cloned()
    }

    /// Re-reads every announcement from the database.
    ///
    /// # Errors
    /// The database's.
    pub async fn refresh(&self, db: &Db) -> Result<(), sqlx::Error> {
        let rows: Vec<Row> = on_pool!(db, p => sqlx::query_as(
            "SELECT municipality, text_da, text_en, expires_at, set_by, set_at FROM crisis_announcements")
            .fetch_all(p).await)?;
        let map = rows
            .into_iter()
            .map(|(m, da, en, exp, by, at)| {
                (
                    m.clone(),
                    Crisis {
                        municipality: m,
                        text_da: da,
                        text_en: en,
                        expires_at: DateTime::from_timestamp_millis(exp).unwrap_or_default(),
                        set_by: by,
                        set_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
                    },
                )
            })
            .collect();
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    /// Stores `c` (replacing the municipality's previous one) and puts it in force.
    ///
    /// # Errors
    /// The database's.
    pub async fn set(&self, db: &Db, c: Crisis) -> Result<(), sqlx::Error> {
        on_pool!(db, p => sqlx::query(
            "INSERT INTO crisis_announcements (municipality, text_da, text_en, expires_at, set_by, set_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (municipality) DO UPDATE SET text_da = $2, text_en = $3, expires_at = $4, set_by = $5, set_at = $6")
            .bind(&c.municipality).bind(&c.text_da).bind(&c.text_en)
            .bind(c.expires_at.timestamp_millis()).bind(&c.set_by).bind(c.set_at.timestamp_millis())
            .execute(p).await.map(|r| r.rows_affected()))?;
        self.current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.municipality.clone(), c);
        Ok(())
    }

    /// Clears the announcement of `m`; false when there was none.
    ///
    /// # Errors
    /// The database's.
    pub async fn clear(&self, db: &Db, m: &str) -> Result<bool, sqlx::Error> {
        let r = on_pool!(db, p => sqlx::query("DELETE FROM crisis_announcements WHERE municipality = $1")
            .bind(m).execute(p).await.map(|r| r.rows_affected()))?;
        let had = self
            .current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(m)
            .is_some();
        Ok(r > 0 || had)
    }

    /// Re-reads the database every [`REFRESH`] until `stop` changes.
    pub fn spawn_refresh(&self, db: Db, mut stop: tokio::sync::watch::Receiver<bool>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(REFRESH) => {}
                    _ = stop.changed() => return,
                }
                if let Err(e) = me.refresh(&db).await {
                    tracing::warn!(error = %e, "crisis announcements not re-read");
                }
            }
        });
    }
}
