//! Crisis announcements (table `crisis_announcements`): per municipality a
//! Danish and an English text, or a recorded audio file, with an expiry
//! time, set or cleared in the console. New calls hear it before their
//! flow: the recording when there is one, else the text in the call's
//! language (the other language when only one is given).
//!
//! A recording is stored in the database (base64, so several engines share
//! it) and written once per engine to `[console] announcements_dir`; the
//! call plays that file before its flow starts.
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

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ivr_core::Lang;
use ivr_flow::model::{Announcement as FlowAnnouncement, Part, Template, Text};
use ivr_flow::Route;
use ivr_integrations::db::Db;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// A recording plays instead of the text.
    pub has_audio: bool,
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

/// An announcement and, for a recording, its file on this engine.
#[derive(Debug, Clone)]
struct Entry {
    crisis: Crisis,
    audio: Option<PathBuf>,
}

/// A recording to announce: the file's bytes and its format (`wav`, `mp3`,
/// `ogg`, `flac`: the extension the decoder is told).
#[derive(Debug, Clone)]
pub struct Recording {
    /// The file.
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: String,
}

/// Formats a recording may have.
pub const AUDIO_FORMATS: [&str; 4] = ["wav", "mp3", "ogg", "flac"];

/// Largest recording, in bytes.
pub const MAX_AUDIO: usize = 8 * 1024 * 1024;

/// The announcements in force, by municipality. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Announcements {
    current: Arc<RwLock<BTreeMap<String, Entry>>>,
    dir: PathBuf,
}

impl Default for Announcements {
    fn default() -> Self {
        Announcements::new(PathBuf::from("var/announcements"))
    }
}

const CREATE: &str = "CREATE TABLE IF NOT EXISTS crisis_announcements (
    municipality TEXT PRIMARY KEY,
    text_da TEXT,
    text_en TEXT,
    audio TEXT,
    audio_format TEXT,
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

type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    String,
    i64,
);

fn literal(text: &str) -> Template {
    Template {
        source: text.to_string(),
        parts: vec![Part::Lit(text.to_string())],
        personal: false,
    }
}

impl Announcements {
    /// Recordings are written to `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Announcements {
            current: Arc::default(),
            dir,
        }
    }

    fn file(&self, c: &Crisis, format: &str) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.{format}",
            c.municipality,
            c.set_at.timestamp_millis()
        ))
    }

    /// `route` with the municipality's announcement in front of its flow, if
    /// one is in force at `now` (else `route` as it is); for a recording,
    /// the route as it is and the file to play first.
    pub fn apply(&self, route: Route, now: DateTime<Utc>) -> (Route, Option<PathBuf>) {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        let Some(e) = current
            .get(&route.municipality.id)
            .filter(|e| e.crisis.expires_at > now)
        else {
            return (route, None);
        };
        if let Some(audio) = &e.audio {
            return (route, Some(audio.clone()));
        }
        let c = &e.crisis;
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
        (
            Route {
                municipality: Arc::new(m),
                entry: route.entry,
            },
            None,
        )
    }

    /// The version of the announcements as this engine last read them (a
    /// hash of every row: municipality, texts, recording, expiry, when set);
    /// engines on one database agree within [`REFRESH`]. Expired rows count
    /// until they are cleared: the version says what was read, not what plays.
    pub fn version(&self) -> String {
        let current = self.current.read().unwrap_or_else(|p| p.into_inner());
        let rows: Vec<String> = current
            .values()
            .map(|e| {
                let c = &e.crisis;
                format!(
                    "{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{}\u{1f}{}",
                    c.municipality,
                    c.text_da,
                    c.text_en,
                    c.has_audio,
                    c.expires_at.timestamp_millis(),
                    c.set_at.timestamp_millis()
                )
            })
            .collect();
        crate::version::parts_version("ivr-announcements-v1", rows.iter().map(|r| r.as_bytes()))
    }

    /// The announcement of `m` in force at `now`.
    pub fn get(&self, m: &str, now: DateTime<Utc>) -> Option<Crisis> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(m)
            .filter(|e| e.crisis.expires_at > now)
            .map(|e| e.crisis.clone())
    }

    /// Re-reads every announcement from the database.
    ///
    /// # Errors
    /// The database's.
    /// A recording set by another engine is fetched and written once.
    pub async fn refresh(&self, db: &Db) -> Result<(), sqlx::Error> {
        let rows: Vec<Row> = on_pool!(db, p => sqlx::query_as(
            "SELECT municipality, text_da, text_en, audio_format, expires_at, set_by, set_at FROM crisis_announcements")
            .fetch_all(p).await)?;
        let mut map = BTreeMap::new();
        for (m, da, en, format, exp, by, at) in rows {
            let crisis = Crisis {
                municipality: m.clone(),
                text_da: da,
                text_en: en,
                has_audio: format.is_some(),
                expires_at: DateTime::from_timestamp_millis(exp).unwrap_or_default(),
                set_by: by,
                set_at: DateTime::from_timestamp_millis(at).unwrap_or_default(),
            };
            let mut audio = None;
            if let Some(format) = format {
                let file = self.file(&crisis, &format);
                if !file.exists() {
                    let (b64,): (Option<String>,) = on_pool!(db, p => sqlx::query_as(
                        "SELECT audio FROM crisis_announcements WHERE municipality = $1")
                        .bind(&m).fetch_one(p).await)?;
                    let bytes =
                        b64.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
                    if let Some(bytes) = bytes {
                        if let Err(e) = self.write(&file, &bytes) {
                            tracing::warn!(error = %e, "crisis recording not written; the text plays");
                        }
                    }
                }
                audio = file.exists().then_some(file);
            }
            map.insert(m, Entry { crisis, audio });
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = map;
        Ok(())
    }

    fn write(&self, file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let tmp = file.with_extension("part");
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, file)
    }

    /// Writes `rec` where [`Announcements::set`] would put it for `c`, so it
    /// can be checked (decoded) before it is set.
    ///
    /// # Errors
    /// The file system's.
    pub fn stage(&self, c: &Crisis, rec: &Recording) -> std::io::Result<PathBuf> {
        let file = self.file(c, &rec.format);
        self.write(&file, &rec.bytes)?;
        Ok(file)
    }

    /// Stores `c` (replacing the municipality's previous one) and puts it in force.
    ///
    /// # Errors
    /// The database's.
    /// A recording (`rec`, staged with [`Announcements::stage`]) plays instead of the text.
    ///
    /// # Errors
    /// The database's.
    pub async fn set(
        &self,
        db: &Db,
        mut c: Crisis,
        rec: Option<&Recording>,
    ) -> Result<(), sqlx::Error> {
        c.has_audio = rec.is_some();
        let b64 = rec.map(|r| base64::engine::general_purpose::STANDARD.encode(&r.bytes));
        let format = rec.map(|r| r.format.clone());
        on_pool!(db, p => sqlx::query(
            "INSERT INTO crisis_announcements (municipality, text_da, text_en, audio, audio_format, expires_at, set_by, set_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (municipality) DO UPDATE SET text_da = $2, text_en = $3, audio = $4, audio_format = $5, expires_at = $6, set_by = $7, set_at = $8")
            .bind(&c.municipality).bind(&c.text_da).bind(&c.text_en).bind(&b64).bind(&format)
            .bind(c.expires_at.timestamp_millis()).bind(&c.set_by).bind(c.set_at.timestamp_millis())
            .execute(p).await.map(|r| r.rows_affected()))?;
        let audio = rec.map(|r| self.file(&c, &r.format)).filter(|f| f.exists());
        self.current
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(c.municipality.clone(), Entry { crisis: c, audio });
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
