//! The console's pages: one HTML shell per page (navigation, municipality
//! picker, an empty main area) and two assets, `console.js` (fetches
//! `/api/v1`, draws tables and SVG charts, refreshes the live page) and
//! `console.css`. Everything is compiled into the binary: no CDN, no
//! build step, works offline.
//!
//! A page is one entry of [`PAGES`] plus a renderer of the same name in
//! `console.js` (`PAGES.<id> = async (main, ctx) => ...`).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::ConsoleState;

/// The pages: id (URL and renderer) and title.
pub const PAGES: [(&str, &str); 9] = [
    ("live", "Live calls"),
    ("call", "Call this flow"),
    ("kpis", "KPIs"),
    ("callbacks", "Callbacks & mail"),
    ("calls", "Calls & transcripts"),
    ("flows", "Flows"),
    ("announcement", "Crisis announcement"),
    ("audit", "Audit log"),
    ("account", "Account & tokens"),
];

const JS: &str = include_str!("assets/console.js");
const CSS: &str = include_str!("assets/console.css");

fn shell(id: &str, title: &str) -> String {
    let nav: String = PAGES
        .iter()
        .map(|(p, t)| {
            let cur = if *p == id {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<a href=\"/console/{p}\"{cur}>{t}</a>")
        })
        .collect();
    let (nav, tools) = if id == "login" {
        (String::new(), String::new())
    } else {
        (
            format!("<nav>{nav}</nav>"),
            "<div class=\"tools\"><label>Municipality <select id=\"muni\"></select></label>\
             <span id=\"who\"></span><button id=\"logout\" type=\"button\">Log out</button></div>"
                .to_string(),
        )
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · IVR console</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head>\
         <body data-page=\"{id}\"><header><strong class=\"brand\">IVR console</strong>{nav}{tools}</header>\
         <main id=\"main\"><h1>{title}</h1><div id=\"content\" aria-live=\"polite\"></div></main>\
         <script src=\"/console/assets/console.js\"></script></body></html>"
    )
}

async fn page(Path(id): Path<String>) -> Response {
    if id == "login" {
        return Html(shell("login", "Log in")).into_response();
    }
    match PAGES.iter().find(|(p, _)| *p == id) {
        Some((p, t)) => Html(shell(p, t)).into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    let (ct, body) = match name.as_str() {
        "console.js" => ("text/javascript; charset=utf-8", JS),
        "console.css" => ("text/css; charset=utf-8", CSS),
        _ => return (StatusCode::NOT_FOUND, "not found\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ct),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `/`, `/console`, `/console/{page}`, `/console/assets/{name}`.
pub fn router(_state: ConsoleState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/live") }))
        .route("/console", get(|| async { Redirect::to("/console/live") }))
        .route("/console/", get(|| async { Redirect::to("/console/live") }))
        .route("/console/{id}", get(page))
        .route("/console/assets/{name}", get(asset))
}
