//! Runs a stand-in server for demos and `make run`:
//!
//! ```text
//! ivr-standin frontdesk [--listen 127.0.0.1:8082]
//! ivr-standin puzzel    [--listen 127.0.0.1:8081]
//! ```

use ivr_integrations::standin;

fn usage() -> ! {
    eprintln!("usage: ivr-standin frontdesk|puzzel [--listen ADDR:PORT]");
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(which) = args.first() else { usage() };
    let listen = match args.get(1).map(String::as_str) {
        Some("--listen") => args.get(2).cloned().unwrap_or_else(|| usage()),
        Some(_) => usage(),
        None if which == "puzzel" => "127.0.0.1:8081".to_string(),
        None => "127.0.0.1:8082".to_string(),
    };
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!(
        "ivr-standin {which}: listening on http://{}",
        listener.local_addr()?
    );
    match which.as_str() {
        "frontdesk" => {
            standin::frontdesk::serve_forever(
                listener,
                standin::frontdesk::FrontdeskStandinConfig::realistic(),
            )
            .await
        }
        "puzzel" => {
            let _server =
                standin::puzzel::serve(listener, standin::puzzel::PuzzelStandinConfig::default())
                    .await?;
            tokio::signal::ctrl_c().await
        }
        _ => usage(),
    }
}
