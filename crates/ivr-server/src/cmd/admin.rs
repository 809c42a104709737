//! `ivr admin`: console accounts from the command line, for the first
//! account of a deployment (later ones can be made in the console by a
//! central supervisor, `POST /api/v1/users`).
//!
//! ```text
//! ivr admin add-user anna --scope nordby --role operator   # password from stdin
//! IVR_ADMIN_PASSWORD=... ivr admin add-user root --scope central --role supervisor
//! ivr admin list-users
//! ```

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use ivr_engine::console::accounts::{Accounts, Role, Scope};
use ivr_integrations::db::Db;

/// Arguments of `ivr admin`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The configuration file (its database holds the accounts).
    #[arg(long, default_value = "config/default.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Create a console account. The password is read from the environment
    /// variable IVR_ADMIN_PASSWORD or else from the first line of standard
    /// input (at least 10 characters).
    AddUser {
        /// User name (a-z, 0-9, _ or -).
        username: String,
        /// `central` (every municipality) or a municipality id.
        #[arg(long)]
        scope: String,
        /// viewer, operator or supervisor.
        #[arg(long, default_value = "operator")]
        role: String,
    },
    /// List the console accounts.
    ListUsers,
}

/// Runs `ivr admin`.
pub(crate) fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cfg = crate::config::load(&args.config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let db = Db::connect(&cfg.integrations.database_url)
            .await
            .context("cannot open the database")?;
        Accounts::create_tables(&db)
            .await
            .context("cannot create the account tables")?;
        let accounts = Accounts::new(db.clone());
        match args.command {
            Command::AddUser {
                username,
                scope,
                role,
            } => {
                let scope = Scope::parse(&scope)
                    .context("--scope: `central` or a municipality id (a-z, 0-9, _ or -)")?;
                let role = Role::parse(&role).context("--role: viewer, operator or supervisor")?;
                let password = match std::env::var("IVR_ADMIN_PASSWORD") {
                    Ok(p) if !p.is_empty() => p,
                    _ => {
                        eprintln!("password (one line on standard input):");
                        let mut line = String::new();
                        std::io::stdin().lock().read_line(&mut line)?;
                        line.trim_end_matches(['\r', '\n']).to_string()
                    }
                };
                accounts
                    .add_user(&username, &password, &scope, role, chrono::Utc::now())
                    .await?;
                println!(
                    "added {username} ({}, {})",
                    scope.as_stored(),
                    role.as_str()
                );
            }
            Command::ListUsers => {
                for u in accounts.list_users().await? {
                    println!(
                        "{}\t{}\t{}",
                        u.username,
                        u.scope.as_stored(),
                        u.role.as_str()
                    );
                }
            }
        }
        db.close().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
