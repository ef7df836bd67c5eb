//! `acs-core`: the access-control core's server and administration commands.
//!
//! - `acs-core serve --db acs.db --listen 127.0.0.1:8700` serves the integrator API;
//! - `acs-core migrate --db acs.db` brings the database schema up to date;
//! - `acs-core tenant create --db acs.db --slug acme --name "Acme"` creates a tenant and
//!   prints its first API key (shown once).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use acs_core::Core;
use acs_core::store::{SqliteStore, Store};
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
        Command::Serve { db, listen } => {
            let store: Arc<dyn Store> = Arc::new(open(&db)?);
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            tracing::info!(%addr, db = %db.display(), "integrator API listening");
            println!(
                "acs-core listening on http://{addr} (database {})",
                db.display()
            );
            acs_core::serve(listener, Core::new(store), async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("server failed")?;
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
