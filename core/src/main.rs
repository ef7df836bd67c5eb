//! `acs-core`: the access-control core's server and administration commands.
//!
//! - `acs-core serve --db acs.db --listen 127.0.0.1:8700 --receiver 127.0.0.1:8701` serves
//!   the integrator API, the device-facing receiver and the sync engine;
//! - `acs-core migrate --db acs.db` brings the database schema up to date;
//! - `acs-core tenant create --db acs.db --slug acme --name "Acme"` creates a tenant and
//!   prints its first API key (shown once).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use acs_core::Core;
use acs_core::store::{SqliteStore, Store};
use acs_core::sync::{SyncEngine, SyncOptions};
use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "acs-core", version, about = "The access-control core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the integrator API.
    Serve {
        /// SQLite database file (created if missing); `:memory:` keeps nothing.
        #[arg(long, default_value = "acs.db", env = "ACS_CORE_DB")]
        db: PathBuf,
        /// Address of the integrator API.
        #[arg(long, default_value = "127.0.0.1:8700", env = "ACS_CORE_LISTEN")]
        listen: SocketAddr,
        /// Address of the device-facing receiver (monitor notifications, online mode,
        /// enrollment results).
        #[arg(long, default_value = "127.0.0.1:8701", env = "ACS_CORE_RECEIVER")]
        receiver: SocketAddr,
        /// HOST:PORT at which terminals reach the receiver (configured on every terminal as
        /// its monitor and online server); defaults to the receiver's address.
        #[arg(long, env = "ACS_CORE_ADVERTISE")]
        advertise: Option<String>,
        /// Do not run the sync engine (terminals are left alone).
        #[arg(long)]
        no_sync: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// SQLite database file.
        #[arg(long, default_value = "acs.db", env = "ACS_CORE_DB")]
        db: PathBuf,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its first API key.
    Create {
        /// SQLite database file.
        #[arg(long, default_value = "acs.db", env = "ACS_CORE_DB")]
        db: PathBuf,
        /// Unique short name (letters, digits, '-', '_').
        #[arg(long)]
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
    },
}

fn open(db: &std::path::Path) -> anyhow::Result<SqliteStore> {
    let store = if db.as_os_str() == ":memory:" {
        SqliteStore::in_memory()
    } else {
        SqliteStore::open(db)
    };
    store.with_context(|| format!("cannot open the database {}", db.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve {
            db,
            listen,
            receiver,
            advertise,
            no_sync,
        } => {
            let store: Arc<dyn Store> = Arc::new(open(&db)?);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let receiver_listener = tokio::net::TcpListener::bind(receiver)
                .await
                .with_context(|| format!("cannot listen on {receiver}"))?;
            let addr = listener.local_addr()?;
            let receiver_addr = receiver_listener.local_addr()?;
            let core = Core::new(store);
            let advertised = match advertise {
                Some(text) => {
                    let (host, port) = text
                        .rsplit_once(':')
                        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                        .with_context(|| format!("--advertise must be HOST:PORT, got '{text}'"))?;
                    (host, port)
                }
                None => (receiver_addr.ip().to_string(), receiver_addr.port()),
            };
            let engine = (!no_sync).then(|| {
                SyncEngine::spawn(
                    core.clone(),
                    SyncOptions {
                        receiver: Some(advertised.clone()),
                        ..SyncOptions::default()
                    },
                )
            });
            tracing::info!(%addr, receiver = %receiver_addr, db = %db.display(), "integrator API listening");
            println!(
                "acs-core listening on http://{addr} (receiver http://{receiver_addr}, database {})",
                db.display()
            );
            let stop = tokio_util::sync::CancellationToken::new();
            let receiver_task = tokio::spawn(acs_core::receiver::serve(
                receiver_listener,
                core.clone(),
                stop.clone().cancelled_owned(),
            ));
            acs_core::serve(listener, core, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("server failed")?;
            stop.cancel();
            let _ = receiver_task.await;
            if let Some(engine) = engine {
                engine.shutdown().await;
            }
        }
        Command::Migrate { db } => {
            let store = open(&db)?;
            println!(
                "{} is at schema version {}",
                db.display(),
                store.version().context("cannot read the schema version")?
            );
        }
        Command::Tenant {
            command: TenantCommand::Create { db, slug, name },
        } => {
            let store: Arc<dyn Store> = Arc::new(open(&db)?);
            let core = Core::new(store);
            let (tenant, key) = core
                .create_tenant(&slug, &name)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            println!("tenant {} ({}) created", tenant.id, tenant.slug);
            println!("API key (shown once): {}", key.secret);
        }
    }
    Ok(())
}
