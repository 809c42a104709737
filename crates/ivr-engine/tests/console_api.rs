//! The console's admin API over a real HTTP socket: who may read and change
//! what. A Nordby account gets 404 for every Sydhavn endpoint (data that
//! exists), an unauthenticated request gets 401 everywhere, changes need the
//! CSRF token, logins are rate-limited, and the KPIs and the quarterly
//! export count exactly the calls recorded.

#![allow(clippy::unwrap_used)] // reason: test code

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use ivr_core::{CallId, FixedClock, Lang, Pii, WallClock};
use ivr_engine::console::accounts::{Role, Scope};
use ivr_engine::console::{self, ConsoleConfig, ConsoleParts, ConsoleState, RecordsView};
use ivr_engine::records::{CallOrigin, CallRecordRow, Records, TurnLog};
use ivr_flow::FlowStore;
use ivr_integrations::callback::{CallbackKind, CallbackRequest, TimeWindow};
use ivr_integrations::mail::{MailKind, OutgoingMail};
use ivr_integrations::Integrations;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const PASSWORD: &str = "korrekt hest batteri";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 16, 10, 0, 0).unwrap()
}

struct Console {
    _dir: tempfile::TempDir,
    base: String,
    http: reqwest::Client,
    records: Records,
}

async fn start() -> Console {
    start_on("sqlite::memory:").await
}

/// A fresh PostgreSQL database for one test, when `IVR_TEST_POSTGRES_URL`
/// is set (`scripts/with-test-services.sh`); under CI it must be.
async fn postgres() -> Option<String> {
    let Some(url) = std::env::var("IVR_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        assert!(
            std::env::var_os("CI").is_none(),
            "IVR_TEST_POSTGRES_URL is not set under CI: run the suite through scripts/with-test-services.sh"
        );
        eprintln!("SKIP postgres backend: IVR_TEST_POSTGRES_URL not set (run through scripts/with-test-services.sh)");
        return None;
    };
    use sqlx::Connection;
    let name = format!("console_{:016x}", ivr_sip::ids::secure_u64());
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let query = url
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    Some(format!("{base}/{name}{query}"))
}

async fn start_on(database_url: &str) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let flows_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let (flows, _) = FlowStore::load(&flows_dir).unwrap();
    let clock: Arc<dyn WallClock> = Arc::new(FixedClock(now()));
    let icfg = ivr_integrations::config::Config {
        database_url: database_url.into(),
        ..Default::default()
    };
    let integrations = Arc::new(Integrations::start(&icfg, clock.clone()).await.unwrap());
    let db = integrations.db().clone();
    let state = ConsoleState::open(ConsoleParts {
        cfg: ConsoleConfig {
            drafts_dir: dir.path().join("drafts"),
            ..ConsoleConfig::default()
        },
        db: db.clone(),
        flows: Arc::new(flows),
        reloads: console::FlowReloads::default(),
        live: Default::default(),
        announcements: ivr_engine::console::announce::Announcements::new(
            dir.path().join("announcements"),
        ),
        integrations: Some(integrations.clone()),
        tts: None,
        clock: clock.clone(),
        records: RecordsView {
            enabled: true,
            keep_transcripts: true,
            retention_days: 30,
        },
        softphone: None,
        flows_dir: flows_dir.clone(),
    })
    .await
    .unwrap();
    let a = state.accounts();
    for (u, scope, role) in [
        (
            "nordby-op",
            Scope::Municipality("nordby".into()),
            Role::Operator,
        ),
        (
            "nordby-viewer",
            Scope::Municipality("nordby".into()),
            Role::Viewer,
        ),
        ("central", Scope::Central, Role::Supervisor),
    ] {
        a.add_user(u, PASSWORD, &scope, role, now()).await.unwrap();
    }
    // Data in both municipalities: a call, a callback, a mail.
    let records = Records::open(db.clone()).await.unwrap();
    for m in ["nordby", "sydhavn"] {
        records
            .insert(&call(&format!("{m}-1"), m, "transferred", now()))
            .await
            .unwrap();
        integrations
            .callbacks()
            .enqueue(
                &CallbackRequest {
                    call_ref: CallId::new(format!("{m}-1")),
                    kind: CallbackKind::callback(),
                    municipality: m.into(),
                    phone: Pii::new("+4512345678".into()),
                    topic: "pas".into(),
                    lang: Lang::Da,
                    window: TimeWindow {
                        start: now(),
                        end: now() + Duration::hours(2),
                    },
                },
                now(),
            )
            .await
            .unwrap();
        integrations
            .outbox()
            .enqueue(
                &OutgoingMail {
                    key: format!("{m}-1:mail"),
                    municipality: m.into(),
                    kind: MailKind::OutOfHoursMessage,
                    from: "ivr@example.org".into(),
                    to: "borgerservice@example.org".into(),
                    subject: Pii::new("Besked".into()),
                    body: Pii::new("Ring til mig".into()),
                },
                now(),
            )
            .await
            .unwrap();
    }
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let app = console::router(state);
    tokio::spawn(async move {
        axum::serve(
            l,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Console {
        _dir: dir,
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        records,
    }
}

fn call(call_ref: &str, m: &str, outcome: &str, at: DateTime<Utc>) -> CallRecordRow {
    CallRecordRow {
        call_ref: call_ref.into(),
        municipality: m.into(),
        called: Pii::new("+4570101010".into()),
        calling: Pii::new("+4512345678".into()),
        started_at: at,
        ended_at: at + Duration::seconds(40),
        talk_ms: 40_000,
        steps: vec!["main/welcome".into(), "main/menu".into()],
        intents: vec![],
        outcome: outcome.into(),
        transferred_to: (outcome == "transferred").then(|| "borgerservice".into()),
        lang: "da".into(),
        turns: 1,
        transcript: Some(Pii::new("jeg skal have et pas".into())),
        questions: vec![],
        turn_log: vec![TurnLog::new("start", ""), {
            let mut t = TurnLog::new("speech", "main/menu");
            t.heard = Some(Pii::new("ring mig op på 12345678".into()));
            t.said = vec![
                (Pii::new("Jeg ringer dig op på".into()), false),
                (Pii::new("12 34 56 78".into()), true),
            ];
            t
        }],
        origin: CallOrigin::Phone,
    }
}

/// A logged-in session: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Console {
    async fn login(&self, user: &str) -> Session {
        let r = self
            .http
            .post(format!("{}/api/v1/session", self.base))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"),
            "{set}"
        );
        let cookie = set.split(';').next().unwrap().to_string();
        let body: Value = r.json().await.unwrap();
        Session {
            cookie,
            csrf: body["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    async fn req(
        &self,
        s: Option<&Session>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut b = self.http.request(method, format!("{}{path}", self.base));
        if let Some(s) = s {
            b = b
                .header("cookie", &s.cookie)
                .header("x-csrf-token", &s.csrf);
        }
        if let Some(j) = body {
            b = b.json(&j);
        }
        let r = b.send().await.unwrap();
        let st = r.status();
        let text = r.text().await.unwrap();
        (
            st,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

/// Every municipality-scoped endpoint, with a body for the changes.
fn scoped_endpoints(m: &str) -> Vec<(Method, String, Option<Value>)> {
    let p = format!("/api/v1/municipalities/{m}");
    vec![
        (Method::GET, format!("{p}/live"), None),
        (Method::GET, format!("{p}/kpis"), None),
        (Method::GET, format!("{p}/export?quarter=2026Q4"), None),
        (Method::GET, format!("{p}/callbacks"), None),
        (
            Method::POST,
            format!("{p}/callbacks/{m}-1/callback/done"),
            None,
        ),
        (
            Method::POST,
            format!("{p}/callbacks/{m}-1/callback/retry"),
            None,
        ),
        (Method::GET, format!("{p}/mails"), None),
        (Method::POST, format!("{p}/mails/{m}-1:mail/retry"), None),
        (Method::GET, format!("{p}/calls"), None),
        (Method::GET, format!("{p}/calls/{m}-1"), None),
        (Method::GET, format!("{p}/flows"), None),
        (Method::GET, format!("{p}/flows/main/graph.svg"), None),
        (Method::GET, format!("{p}/announcement"), None),
        (
            Method::PUT,
            format!("{p}/announcement"),
            Some(json!({"text_da": "Test", "minutes": 5})),
        ),
        (Method::DELETE, format!("{p}/announcement"), None),
        (Method::GET, format!("{p}/audit"), None),
    ]
}

#[tokio::test]
async fn a_nordby_operator_gets_404_for_every_sydhavn_endpoint_and_changes_nothing_there() {
    scoping_holds(start().await).await;
}

#[tokio::test]
async fn on_postgresql_scoping_and_the_kpis_hold_as_on_sqlite() {
    if let Some(url) = postgres().await {
        scoping_holds(start_on(&url).await).await;
    }
    if let Some(url) = postgres().await {
        kpis_count_exactly(start_on(&url).await).await;
    }
}

async fn scoping_holds(c: Console) {
    let s = c.login("nordby-op").await;
    for (method, path, body) in scoped_endpoints("sydhavn") {
        let (st, v) = c.req(Some(&s), method.clone(), &path, body).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "not_found", "{method} {path}");
    }
    // The same endpoints for Nordby answer (the callback was marked done
    // before the retry, so the retry is refused as a bad request, not hidden).
    for (method, path, body) in scoped_endpoints("nordby") {
        let (st, v) = c.req(Some(&s), method.clone(), &path, body).await;
        assert!(
            st.is_success() || (st == StatusCode::BAD_REQUEST && path.contains("retry")),
            "{method} {path}: {st} {v}"
        );
    }
    // Sydhavn's callback is untouched, and the lists a Nordby account sees hold only Nordby.
    let central = c.login("central").await;
    let (_, v) = c
        .req(
            Some(&central),
            Method::GET,
            "/api/v1/municipalities/sydhavn/callbacks",
            None,
        )
        .await;
    assert_eq!(v["items"][0]["state"], "requested", "{v}");
    let (_, v) = c
        .req(Some(&s), Method::GET, "/api/v1/municipalities", None)
        .await;
    assert_eq!(v, json!([{"id": "nordby", "name": v[0]["name"]}]));
    let (_, v) = c
        .req(Some(&s), Method::GET, "/api/v1/kpis?quarter=2026Q4", None)
        .await;
    assert_eq!(
        (v["municipality"].as_str(), v["calls"].as_u64()),
        (Some("nordby"), Some(1)),
        "{v}"
    );
    let (st, _) = c.req(Some(&s), Method::GET, "/api/v1/users", None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn without_a_session_every_api_path_answers_401_and_nothing_else() {
    let c = start().await;
    let mut all = scoped_endpoints("nordby");
    all.extend(scoped_endpoints("no-such-place"));
    for p in [
        "/api/v1/session",
        "/api/v1/tokens",
        "/api/v1/municipalities",
        "/api/v1/live",
        "/api/v1/kpis",
        "/api/v1/export",
        "/api/v1/users",
        "/api/v1/no/such/path",
    ] {
        all.push((Method::GET, p.to_string(), None));
    }
    all.push((Method::DELETE, "/api/v1/tokens/abc".into(), None));
    for (method, path, body) in all {
        let (st, v) = c.req(None, method.clone(), &path, body).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(v["error"]["code"], "unauthenticated", "{method} {path}");
    }
    // A forged cookie is no better.
    let forged = Session {
        cookie: "ivr_session=AAAA".into(),
        csrf: "x".into(),
    };
    let (st, _) = c
        .req(Some(&forged), Method::GET, "/api/v1/live", None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_change_with_the_session_cookie_but_without_the_csrf_token_is_refused() {
    let c = start().await;
    let s = c.login("nordby-op").await;
    let no_csrf = Session {
        cookie: s.cookie.clone(),
        csrf: String::new(),
    };
    let (st, v) = c
        .req(
            Some(&no_csrf),
            Method::DELETE,
            "/api/v1/municipalities/nordby/announcement",
            None,
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf"))
    );
    // Reading needs no token.
    let (st, _) = c
        .req(Some(&no_csrf), Method::GET, "/api/v1/live", None)
        .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn a_browser_call_needs_a_session_the_csrf_token_an_operator_role_and_a_municipality_in_scope(
) {
    // This console has no softphone (as with `[webrtc] enabled = false`):
    // every check before placing the call still holds, and then 503.
    let c = start().await;
    let offer = json!({"municipality": "nordby", "sdp": "v=0\r\n"});
    for (method, path, body) in [
        (Method::POST, "/api/v1/calls/webrtc", Some(offer.clone())),
        (Method::GET, "/api/v1/calls/webrtc/c0000000000000001", None),
        (
            Method::DELETE,
            "/api/v1/calls/webrtc/c0000000000000001",
            None,
        ),
    ] {
        let (st, _) = c.req(None, method.clone(), path, body).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    let op = c.login("nordby-op").await;
    let no_csrf = Session {
        cookie: op.cookie.clone(),
        csrf: String::new(),
    };
    let (st, v) = c
        .req(
            Some(&no_csrf),
            Method::POST,
            "/api/v1/calls/webrtc",
            Some(offer.clone()),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf"))
    );
    let viewer = c.login("nordby-viewer").await;
    let (st, v) = c
        .req(
            Some(&viewer),
            Method::POST,
            "/api/v1/calls/webrtc",
            Some(offer.clone()),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (st, _) = c
        .req(
            Some(&op),
            Method::POST,
            "/api/v1/calls/webrtc",
            Some(json!({"municipality": "sydhavn", "sdp": "v=0\r\n"})),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "Sydhavn is not the Nordby operator's to call"
    );
    let (st, v) = c
        .req(Some(&op), Method::POST, "/api/v1/calls/webrtc", Some(offer))
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );
}

#[tokio::test]
async fn a_viewer_reads_but_may_not_change_and_sees_numbers_masked() {
    let c = start().await;
    let s = c.login("nordby-viewer").await;
    let (st, v) = c
        .req(
            Some(&s),
            Method::POST,
            "/api/v1/municipalities/nordby/callbacks/nordby-1/callback/done",
            None,
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (_, v) = c
        .req(
            Some(&s),
            Method::GET,
            "/api/v1/municipalities/nordby/callbacks",
            None,
        )
        .await;
    assert_eq!(v["items"][0]["phone"], "+45••••••78");
    let (_, v) = c
        .req(
            Some(&s),
            Method::GET,
            "/api/v1/municipalities/nordby/calls/nordby-1",
            None,
        )
        .await;
    assert_eq!(v["unmasked"], false);
    let shown = v.to_string();
    assert!(
        !shown.contains("12345678") && !shown.contains("12 34 56 78"),
        "{shown}"
    );
    assert_eq!(
        v["turns"][1]["said"],
        json!(["Jeg ringer dig op på", "••• (personal)"])
    );
    let central = c.login("central").await;
    let (_, v) = c
        .req(
            Some(&central),
            Method::GET,
            "/api/v1/municipalities/nordby/calls/nordby-1",
            None,
        )
        .await;
    assert_eq!(v["turns"][1]["said"][1], "12 34 56 78");
    assert_eq!(v["turns"][1]["heard"], "ring mig op på 12345678");
    let (_, v) = c
        .req(
            Some(&central),
            Method::GET,
            "/api/v1/municipalities/nordby/audit",
            None,
        )
        .await;
    let views: Vec<_> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "transcript.view")
        .map(|e| {
            (
                e["username"].as_str(),
                e["target"].as_str(),
                e["detail"].as_str(),
            )
        })
        .collect();
    // Newest first, also at the same instant of the test's fixed clock.
    assert_eq!(
        views,
        [
            (Some("central"), Some("nordby-1"), Some("unmasked")),
            (Some("nordby-viewer"), Some("nordby-1"), Some("masked")),
        ],
        "{v}"
    );
}

#[tokio::test]
async fn the_sixth_wrong_password_in_a_row_gets_429_even_with_the_right_one_next() {
    let c = start().await;
    for _ in 0..5 {
        let (st, _) = c
            .req(
                None,
                Method::POST,
                "/api/v1/session",
                Some(json!({"username": "nordby-op", "password": "forkert"})),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
    }
    let (st, v) = c
        .req(
            None,
            Method::POST,
            "/api/v1/session",
            Some(json!({"username": "nordby-op", "password": PASSWORD})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
}

#[tokio::test]
async fn an_api_token_works_without_csrf_and_stops_working_when_revoked() {
    let c = start().await;
    let s = c.login("nordby-op").await;
    let (_, v) = c
        .req(
            Some(&s),
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "kpi script"})),
        )
        .await;
    let secret = v["secret"].as_str().unwrap().to_string();
    let id = v["token"]["id"].as_str().unwrap().to_string();
    let get = |path: &str| {
        c.http
            .get(format!("{}{path}", c.base))
            .bearer_auth(&secret)
            .send()
    };
    assert_eq!(
        get("/api/v1/municipalities/nordby/kpis")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        get("/api/v1/municipalities/sydhavn/kpis")
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let (st, _) = c
        .req(
            Some(&s),
            Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(
        get("/api/v1/live").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_kpis_and_the_quarterly_export_count_exactly_the_recorded_phone_calls_not_operators_test_calls(
) {
    kpis_count_exactly(start().await).await;
}

async fn kpis_count_exactly(c: Console) {
    // Besides the one transferred call from start(): 7 more Nordby calls in
    // Q4 with known outcomes, turns and latencies, one in Q3 and two
    // operators' test calls that must not count.
    let plan = [
        ("resolved", Some(300), false),
        ("resolved", Some(500), true),
        ("booked", Some(700), false),
        ("callback_ordered", Some(900), false),
        ("abandoned", None, true),
        ("abandoned", None, false),
        ("transferred", Some(1100), true),
    ];
    for (i, (outcome, latency, mis)) in plan.iter().enumerate() {
        let mut r = call(
            &format!("q4-{i}"),
            "nordby",
            outcome,
            now() + Duration::hours(i as i64),
        );
        // Only the planned turn: not the fixture's.
        r.turn_log.truncate(1);
        let mut t = TurnLog::new("speech", "main/menu");
        t.latency_ms = *latency;
        t.misunderstood = *mis;
        r.turn_log.push(t);
        if i == 4 {
            r.steps = vec!["main/welcome".into()];
            r.lang = "en".into();
        }
        c.records.insert(&r).await.unwrap();
    }
    c.records
        .insert(&call(
            "q3",
            "nordby",
            "resolved",
            Utc.with_ymd_and_hms(2026, 8, 1, 9, 0, 0).unwrap(),
        ))
        .await
        .unwrap();
    // Two operators' test calls from the softphone in Q4 (the published
    // flow and a draft): listed with the call records, marked, and counted
    // in no KPI.
    for (id, origin) in [
        ("browser-1", CallOrigin::Browser),
        ("draft-1", CallOrigin::Draft),
    ] {
        let mut r = call(id, "nordby", "resolved", now() + Duration::hours(2));
        r.calling = Pii::new("browser:nordby-op".into());
        r.origin = origin;
        c.records.insert(&r).await.unwrap();
    }
    let s = c.login("nordby-op").await;
    let (_, list) = c
        .req(
            Some(&s),
            Method::GET,
            "/api/v1/municipalities/nordby/calls?limit=50",
            None,
        )
        .await;
    let origin_of = |id: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["call_ref"] == id)
            .map(|i| i["origin"].clone())
    };
    assert_eq!(origin_of("browser-1"), Some(json!("browser")), "{list}");
    assert_eq!(origin_of("draft-1"), Some(json!("draft")), "{list}");
    assert_eq!(origin_of("q4-0"), Some(json!("phone")), "{list}");
    let (_, k) = c
        .req(
            Some(&s),
            Method::GET,
            "/api/v1/municipalities/nordby/kpis?quarter=2026Q4&period=month",
            None,
        )
        .await;
    assert_eq!(k["calls"], 8, "{k}");
    // resolved x2, booked, callback_ordered = 4 of 8 by the bot.
    assert_eq!(k["resolved_by_bot"], 4);
    assert_eq!(k["resolved_share"], 0.5);
    assert_eq!(k["outcomes"]["abandoned"], 2);
    assert_eq!(k["transfers"]["borgerservice"], 2);
    assert_eq!(k["languages"], json!({"da": 7, "en": 1}));
    // The 7 planned turns and the fixture call's one.
    assert_eq!(k["turns"], 8);
    assert_eq!(k["misunderstood_turns"], 3);
    assert_eq!(
        k["gather_steps"],
        json!([{"step": "main/menu", "turns": 8, "misunderstood": 3, "no_input": 0}])
    );
    // Latencies 300, 500, 700, 900, 1100: nearest-rank p50 = 700, p95 = 1100.
    assert_eq!(
        (k["latency_p50_ms"].as_i64(), k["latency_p95_ms"].as_i64()),
        (Some(700), Some(1100))
    );
    // One abandoned call hung up at main/welcome, the other at main/menu.
    let funnel = k["funnel"].as_array().unwrap();
    assert!(
        funnel.contains(&json!({"step": "main/welcome", "reached": 8, "hung_up": 1})),
        "{funnel:?}"
    );
    assert!(
        funnel.contains(&json!({"step": "main/menu", "reached": 7, "hung_up": 1})),
        "{funnel:?}"
    );
    assert_eq!(
        k["series"],
        json!([{"label": "2026-11", "calls": 8, "resolved_by_bot": 4}])
    );
    assert_eq!(k["callbacks"]["ordered"], 1);
    let (_, rows) = c
        .req(
            Some(&s),
            Method::GET,
            "/api/v1/municipalities/nordby/export?quarter=2026Q4&format=json",
            None,
        )
        .await;
    let row = &rows[0];
    assert_eq!(
        (
            row["calls"].as_u64(),
            row["resolved_by_bot"].as_u64(),
            row["abandoned"].as_u64(),
            row["transferred"].as_u64()
        ),
        (Some(8), Some(4), Some(2), Some(2))
    );
    let (st, csv) = c
        .req(
            Some(&s),
            Method::GET,
            "/api/v1/municipalities/nordby/export?quarter=2026Q4",
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let csv = csv.as_str().unwrap().to_string();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(
        lines[0].starts_with("format,municipality,quarter,calls,resolved_by_bot,resolved_share")
    );
    assert!(
        lines[1].starts_with(
            "ivr-kpi-quarter-v1,nordby,2026Q4,8,4,0.5000,2,1,0,1,0,2,2,0,8,3,700,1100,7,1,"
        ),
        "{csv}"
    );
}

#[tokio::test]
async fn the_openapi_description_lists_every_route() {
    let c = start().await;
    let r = c
        .http
        .get(format!("{}/api/v1/openapi.json", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/api/v1/session",
        "/api/v1/municipalities/{m}/kpis",
        "/api/v1/municipalities/{m}/announcement",
        "/api/v1/municipalities/{m}/calls/{call_ref}",
        "/api/v1/calls/webrtc",
        "/api/v1/calls/webrtc/{call_ref}",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
}

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            l,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn metrics_can_be_restricted_to_a_token_or_to_addresses_and_health_stays_open() {
    let app = || {
        axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(|| async { "ivr_active_calls 0\n" }),
            )
            .route("/health", axum::routing::get(|| async { "ok\n" }))
    };
    let http = reqwest::Client::new();
    let token_only = ConsoleConfig {
        metrics_token: Some("s3cret-scrape".into()),
        ..ConsoleConfig::default()
    };
    let base = serve(console::guard_metrics(app(), &token_only)).await;
    let get = |path: &str, bearer: Option<&str>| {
        let mut r = http.get(format!("{base}{path}"));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };
    assert_eq!(
        get("/metrics", None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/metrics", Some("wrong")).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/metrics", Some("s3cret-scrape"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(get("/health", None).await.unwrap().status(), StatusCode::OK);
    // Allowed by address: loopback may, without a token.
    let by_addr = ConsoleConfig {
        metrics_allow: vec!["127.0.0.1".parse().unwrap()],
        ..ConsoleConfig::default()
    };
    let base = serve(console::guard_metrics(app(), &by_addr)).await;
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let elsewhere = ConsoleConfig {
        metrics_allow: vec!["10.9.8.7".parse().unwrap()],
        ..ConsoleConfig::default()
    };
    let base = serve(console::guard_metrics(app(), &elsewhere)).await;
    let r = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_recorded_announcement_is_stored_and_a_wrong_format_refused() {
    use base64::Engine as _;
    let c = start().await;
    let s = c.login("nordby-op").await;
    let p = "/api/v1/municipalities/nordby/announcement";
    let wav = base64::engine::general_purpose::STANDARD.encode(b"RIFF\x24\0\0\0WAVEfmt ");
    let (st, v) = c
        .req(
            Some(&s),
            Method::PUT,
            p,
            Some(json!({"audio_base64": wav, "audio_format": "exe", "minutes": 5})),
        )
        .await;
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (st, v) = c
        .req(
            Some(&s),
            Method::PUT,
            p,
            Some(json!({"audio_base64": "not base64!", "audio_format": "wav", "minutes": 5})),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = c
        .req(
            Some(&s),
            Method::PUT,
            p,
            Some(json!({"audio_base64": wav, "audio_format": "wav", "minutes": 5})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, v) = c.req(Some(&s), Method::GET, p, None).await;
    assert_eq!(v["has_audio"], true, "{v}");
    let (st, _) = c
        .req(Some(&s), Method::PUT, p, Some(json!({"minutes": 5})))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "neither text nor recording");
}

/// Copies a folder tree (the shipped flows, for a test that publishes).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[tokio::test]
async fn a_draft_is_checked_refused_with_errors_published_by_reload_and_restored_all_audited() {
    let dir = tempfile::tempdir().unwrap();
    let flows_dir = dir.path().join("flows");
    copy_tree(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../flows"),
        &flows_dir,
    );
    let (flows, _) = FlowStore::load(&flows_dir).unwrap();
    let flows = Arc::new(flows);
    let clock: Arc<dyn WallClock> = Arc::new(FixedClock(now()));
    let icfg = ivr_integrations::config::Config {
        database_url: format!("sqlite:{}", dir.path().join("ivr.db").display()),
        ..Default::default()
    };
    let integrations = Arc::new(Integrations::start(&icfg, clock.clone()).await.unwrap());
    let state = ConsoleState::open(ConsoleParts {
        cfg: ConsoleConfig {
            drafts_dir: dir.path().join("drafts"),
            ..ConsoleConfig::default()
        },
        db: integrations.db().clone(),
        flows: flows.clone(),
        reloads: console::FlowReloads::default(),
        live: Default::default(),
        announcements: ivr_engine::console::announce::Announcements::new(
            dir.path().join("announcements"),
        ),
        integrations: Some(integrations.clone()),
        tts: None,
        clock,
        records: RecordsView {
            enabled: true,
            keep_transcripts: true,
            retention_days: 30,
        },
        softphone: None,
        flows_dir: flows_dir.clone(),
    })
    .await
    .unwrap();
    state
        .accounts()
        .add_user(
            "nordby-op",
            PASSWORD,
            &Scope::Municipality("nordby".into()),
            Role::Operator,
            now(),
        )
        .await
        .unwrap();
    state
        .accounts()
        .add_user(
            "nordby-viewer",
            PASSWORD,
            &Scope::Municipality("nordby".into()),
            Role::Viewer,
            now(),
        )
        .await
        .unwrap();
    let base = serve(console::router(state)).await;
    let c = Console {
        _dir: dir,
        base,
        http: reqwest::Client::new(),
        records: Records::open(integrations.db().clone()).await.unwrap(),
    };
    // The snapshot new calls get: a reload replaces it.
    let snapshot = |flows: &FlowStore| flows.municipality("nordby").unwrap().municipality;
    let first = snapshot(&flows);
    let published = std::fs::read_to_string(flows_dir.join("nordby/main.toml")).unwrap();
    let d = "/api/v1/municipalities/nordby/draft";
    let viewer = c.login("nordby-viewer").await;
    let (st, _) = c.req(Some(&viewer), Method::POST, d, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "a viewer may not draft");
    let op = c.login("nordby-op").await;
    let (st, v) = c.req(Some(&op), Method::GET, d, None).await;
    assert_eq!((st, &v["exists"]), (StatusCode::OK, &json!(false)));
    let (st, v) = c.req(Some(&op), Method::POST, d, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["check"]["ok"], true,
        "the published flows check clean: {}",
        v["check"]
    );
    // An error: a goto to a step that does not exist.
    let broken = published.replacen("next = \"menu\"", "next = \"no_such_step\"", 1);
    assert_ne!(broken, published);
    let (st, v) = c
        .req(
            Some(&op),
            Method::PUT,
            &format!("{d}/files/main.toml"),
            Some(json!({ "text": broken })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["check"]["ok"], false, "{}", v["check"]);
    assert!(
        v["check"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("unknown step `no_such_step`")),
        "{}",
        v["check"]
    );
    let (st, _) = c
        .req(Some(&op), Method::POST, &format!("{d}/publish"), None)
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "a draft with errors is not published"
    );
    assert_eq!(
        std::fs::read_to_string(flows_dir.join("nordby/main.toml")).unwrap(),
        published
    );
    // A file name that leaves the folder is refused.
    let (st, _) = c
        .req(
            Some(&op),
            Method::PUT,
            &format!("{d}/files/..%2Fsydhavn%2Fmain.toml"),
            Some(json!({ "text": "x" })),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Fixed, with a new welcome: published, and the running store has it.
    let edited = published.replacen(
        "Velkommen til Nordby Kommune.",
        "Velkommen til Nordby Kommune, prøveversion.",
        1,
    );
    let (_, v) = c
        .req(
            Some(&op),
            Method::PUT,
            &format!("{d}/files/main.toml"),
            Some(json!({ "text": edited })),
        )
        .await;
    assert_eq!(v["check"]["ok"], true, "{}", v["check"]);
    let (st, v) = c
        .req(Some(&op), Method::POST, &format!("{d}/publish"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (&v["exists"], &v["has_previous"]),
        (&json!(false), &json!(true))
    );
    assert!(std::fs::read_to_string(flows_dir.join("nordby/main.toml"))
        .unwrap()
        .contains("prøveversion"));
    let second = snapshot(&flows);
    assert!(!Arc::ptr_eq(&first, &second), "the store reloaded");
    // Restored: the version before the publish, reloaded.
    let (st, v) = c
        .req(Some(&op), Method::POST, &format!("{d}/restore"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        std::fs::read_to_string(flows_dir.join("nordby/main.toml")).unwrap(),
        published
    );
    assert!(
        !Arc::ptr_eq(&second, &snapshot(&flows)),
        "the store reloaded"
    );
    // Every change is in the audit log.
    let (_, v) = c
        .req(
            Some(&op),
            Method::GET,
            "/api/v1/municipalities/nordby/audit",
            None,
        )
        .await;
    let actions: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "draft.create",
        "draft.edit",
        "draft.publish",
        "draft.restore",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
}
