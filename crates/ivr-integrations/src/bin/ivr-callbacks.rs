//! Operator tool for the callback queue and the mail outbox, for centres
//! that work the queue themselves and for looking at failures:
//!
//! ```text
//! ivr-callbacks --db URL list    [--state S] [--municipality M]
//! ivr-callbacks --db URL export  --format json|csv [--state S] [--municipality M] [--include-phones]
//! ivr-callbacks --db URL done    CALL_REF [KIND]
//! ivr-callbacks --db URL retry   CALL_REF [KIND]
//! ivr-callbacks --db URL mail-list  [--state pending|sent|failed]
//! ivr-callbacks --db URL mail-retry KEY
//! ```
//!
//! `--db` defaults to `sqlite:var/ivr.db`. Phone numbers are left out of
//! every output unless `--include-phones` is given on purpose.

use chrono::Utc;
use ivr_core::CallId;
use ivr_integrations::{
    callback::{CallbackKind, CallbackState, CallbackStore, ExportFormat, ListFilter, PhoneExport},
    outbox::{MailOutbox, OutboxState},
};

fn usage() -> ! {
    eprintln!(
        "usage: ivr-callbacks [--db URL] list|export|done|retry|mail-list|mail-retry [ARGS]\n\
         see the module documentation (src/bin/ivr-callbacks.rs) for the arguments"
    );
    std::process::exit(2)
}

fn state(s: &str) -> CallbackState {
    match s {
        "requested" => CallbackState::Requested,
        "handed_off" => CallbackState::HandedOff,
        "done" => CallbackState::Done,
        "failed" => CallbackState::Failed,
        _ => usage(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("ivr-callbacks: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut db = "sqlite:var/ivr.db".to_string();
    if args.first().map(String::as_str) == Some("--db") {
        db = args.get(1).cloned().unwrap_or_else(|| usage());
        args.drain(..2);
    }
    let Some(cmd) = args.first().cloned() else {
        usage()
    };
    let rest = &args[1..];
    let opt = |name: &str| {
        rest.iter()
            .position(|a| a == name)
            .and_then(|i| rest.get(i + 1))
            .cloned()
    };
    let flag = |name: &str| rest.iter().any(|a| a == name);
    let positional: Vec<&String> = {
        let mut v = Vec::new();
        let mut skip = false;
        for a in rest {
            if skip {
                skip = false;
            } else if a.starts_with("--") {
                skip = !matches!(a.as_str(), "--include-phones");
            } else {
                v.push(a);
            }
        }
        v
    };
    let filter = ListFilter {
        state: opt("--state").map(|s| state(&s)),
        municipality: opt("--municipality"),
        limit: None,
    };
    let phones = if flag("--include-phones") {
        PhoneExport::Include
    } else {
        PhoneExport::Redacted
    };
    let store = CallbackStore::open(&db).await?;
    let key = || -> (CallId, CallbackKind) {
        let call = positional
            .first()
            .map(|s| CallId::new(s.as_str()))
            .unwrap_or_else(|| usage());
        let kind = positional
            .get(1)
            .map(|k| CallbackKind::new(k).unwrap_or_else(|_| usage()))
            .unwrap_or_else(CallbackKind::callback);
        (call, kind)
    };
    let mut out = std::io::stdout().lock();
    match cmd.as_str() {
        "list" => {
            store
                .export(&filter, ExportFormat::Csv, phones, &mut out)
                .await?;
        }
        "export" => {
            let format = match opt("--format").as_deref() {
                Some("json") => ExportFormat::Json,
                Some("csv") => ExportFormat::Csv,
                _ => usage(),
            };
            let n = store.export(&filter, format, phones, &mut out).await?;
            eprintln!("ivr-callbacks: exported {n} requests");
        }
        "done" => {
            let (c, k) = key();
            store.mark_done(&c, &k, Utc::now()).await?;
        }
        "retry" => {
            let (c, k) = key();
            store.retry_failed(&c, &k, Utc::now()).await?;
        }
        "mail-list" => {
            let st = opt("--state").map(|s| match s.as_str() {
                "pending" => OutboxState::Pending,
                "sent" => OutboxState::Sent,
                "failed" => OutboxState::Failed,
                _ => usage(),
            });
            let outbox = MailOutbox::new(store.db().clone());
            use std::io::Write;
            writeln!(
                out,
                "key,municipality,to,state,attempts,created_at,sent_at,last_error"
            )?;
            for r in outbox.list(st).await? {
                writeln!(
                    out,
                    "{},{},{},{},{},{},{},{:?}",
                    r.mail.key,
                    r.mail.municipality,
                    r.mail.to,
                    r.state.as_str(),
                    r.attempts,
                    r.created_at.to_rfc3339(),
                    r.sent_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                    r.last_error.unwrap_or_default()
                )?;
            }
        }
        "mail-retry" => {
            let k = positional.first().unwrap_or_else(|| usage());
            MailOutbox::new(store.db().clone())
                .retry_failed(k, Utc::now())
                .await?;
        }
        _ => usage(),
    }
    Ok(())
}
