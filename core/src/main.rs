//! `acs-core`: the access-control core's server and administration commands.
//!
//! - `acs-core serve --db acs.db --listen 127.0.0.1:8700 --receiver 127.0.0.1:8701` serves
//!   the integrator API, the device-facing receiver, the sync engine and the delivery of
//!   the notifications outbox (`--outbox-dir`, or `--smtp-url` for e-mails); several
//!   `serve` processes may share one database (`--instance-id`, `--poll-ms`,
//!   `--lease-ttl-ms`, `--lease-renew-ms`: ARCHITECTURE.md, "Several instances");
//! - `acs-core migrate --db acs.db` brings the database schema up to date and converts
//!   secrets an earlier version stored in clear into their form at rest;
//! - `acs-core tenant create --db acs.db --slug acme --name "Acme"` creates a tenant and
//!   prints its first API key (shown once);
//! - `acs-core outbox open --db acs.db FILE` prints a message file with its body opened.
//!
//! `--db` is a SQLite file (the default, `acs.db`), `:memory:`, or a PostgreSQL URL
//! (`postgres://user@host:port/db`).
//!
//! Secrets are sealed or digested at rest (docs/domain.md, "Secrets at rest") with the key
//! in `ACS_CORE_SECRET_KEY`, or in the key file `--secret-key-file` (default `<db>.key`
//! for SQLite; required for PostgreSQL unless the variable is set), created 0600 with a
//! new key on first use. The key is never stored in the database. The SQLite database,
//! its log and the key file are created 0600, the outbox directory 0700.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use acs_core::Core;
use acs_core::notify::file::FileSender;
use acs_core::notify::smtp::SmtpSender;
use acs_core::notify::{Sender, Senders};
use acs_core::store::open::{Location, Opened, Options};
use acs_core::store::seal::SecretKey;
use acs_core::sync::{SyncEngine, SyncOptions};
use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "acs-core", version, about = "The access-control core")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of `serve`'s options costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the integrator API.
    Serve {
        /// SQLite database file (created if missing), `:memory:` (keeps nothing) or a
        /// PostgreSQL URL (`postgres://user@host:port/db`).
        #[arg(long, default_value = "acs.db", env = "ACS_CORE_DB")]
        db: String,
        #[command(flatten)]
        key: KeyArgs,
        /// PostgreSQL: the most connections the pool opens.
        #[arg(long, default_value_t = 16, env = "ACS_CORE_PG_POOL_SIZE")]
        pg_pool_size: usize,
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
        /// Seconds between read-backs of each terminal (repairs drift, adopts strays).
        #[arg(long, default_value_t = 300, env = "ACS_CORE_READBACK_SECONDS")]
        readback_seconds: u64,
        /// Base URL of the links sent to people (selfie invitations, cloud keys); defaults
        /// to the integrator API's address.
        #[arg(long, env = "ACS_CORE_PUBLIC_URL")]
        public_url: Option<String>,
        /// Directory the embedded sender writes messages to (one file per message);
        /// defaults to `<db>.outbox/` next to the database. Text messages always go here.
        #[arg(long, env = "ACS_CORE_OUTBOX_DIR")]
        outbox_dir: Option<PathBuf>,
        /// Send e-mails through this SMTP server (`smtp://host:25`, `smtps://user:pass@host`)
        /// instead of writing them to the outbox directory.
        #[arg(long, env = "ACS_CORE_SMTP_URL", requires = "smtp_from")]
        smtp_url: Option<String>,
        /// Sender address of e-mails sent by SMTP.
        #[arg(long, env = "ACS_CORE_SMTP_FROM")]
        smtp_from: Option<String>,
        /// This instance's id among the instances serving one database (terminal leases
        /// and outbox claims are held under it); defaults to host name, pid and a random
        /// suffix.
        #[arg(long, env = "ACS_CORE_INSTANCE_ID")]
        instance_id: Option<String>,
        /// Milliseconds between polls of the database for other instances' changes and
        /// access events.
        #[arg(long, default_value_t = 250, env = "ACS_CORE_POLL_MS")]
        poll_ms: u64,
        /// Milliseconds a terminal lease lasts unless renewed.
        #[arg(long, default_value_t = 10_000, env = "ACS_CORE_LEASE_TTL_MS")]
        lease_ttl_ms: u64,
        /// Milliseconds between renewals of this instance's terminal leases.
        #[arg(long, default_value_t = 3_000, env = "ACS_CORE_LEASE_RENEW_MS")]
        lease_renew_ms: u64,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        /// SQLite database file or PostgreSQL URL.
        #[arg(long, default_value = "acs.db", env = "ACS_CORE_DB")]
        db: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Read the outbox directory's messages.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Print a message file with its sealed body opened.
    Open {
        /// SQLite database file or PostgreSQL URL (its key opens the body).
        #[arg(long, default_value = "acs.db", env = "ACS_CORE_DB")]
        db: String,
        #[command(flatten)]
        key: KeyArgs,
        /// The message file (`<db>.outbox/message-<id>.txt`).
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its first API key.
    Create {
        /// SQLite database file or PostgreSQL URL.
        #[arg(long, default_value = "acs.db", env = "ACS_CORE_DB")]
        db: String,
        #[command(flatten)]
        key: KeyArgs,
        /// Unique short name (letters, digits, '-', '_').
        #[arg(long)]
        slug: String,
        /// Display name.
        #[arg(long)]
        name: String,
    },
}

/// Where the key of the secrets at rest comes from.
#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// File holding the key of the secrets at rest (base64), created with a new key on
    /// first use; default `<db>.key` for a SQLite file. `ACS_CORE_SECRET_KEY` (the key
    /// itself) takes precedence.
    #[arg(long, env = "ACS_CORE_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
}

/// The key of the secrets at rest: `ACS_CORE_SECRET_KEY` (base64 of 32 bytes), or the key
/// file (`--secret-key-file`, or `<db>.key` next to a SQLite file), created with a new
/// random key (mode 0600) on first use. An in-memory database gets a fresh key.
fn secret_key(db: &Location, key: &KeyArgs) -> anyhow::Result<SecretKey> {
    if let Ok(text) = std::env::var("ACS_CORE_SECRET_KEY") {
        return SecretKey::from_base64(&text).context("ACS_CORE_SECRET_KEY");
    }
    let path = match (&key.secret_key_file, db) {
        (Some(path), _) => path.clone(),
        (None, Location::Sqlite(db)) => {
            let mut path = db.as_os_str().to_owned();
            path.push(".key");
            PathBuf::from(path)
        }
        (None, Location::Memory) => return Ok(SecretKey::generate()),
        (None, Location::Postgres(_)) => anyhow::bail!(
            "a PostgreSQL database needs the key of its secrets at rest: set \
             ACS_CORE_SECRET_KEY or --secret-key-file (a file created with a new key on \
             first use; keep it off the database server and give every instance the same)"
        ),
    };
    key_file(&path)
}

/// The key in the file at `path`, created with a new key (mode 0600) when missing.
fn key_file(path: &Path) -> anyhow::Result<SecretKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => SecretKey::from_base64(&text)
            .with_context(|| format!("the key file {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            use std::io::Write as _;
            options
                .open(path)
                .and_then(|mut f| {
                    #[cfg(unix)]
                    f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
                    f.write_all(key.to_base64().as_bytes())?;
                    f.sync_all()
                })
                .with_context(|| format!("cannot write the key file {}", path.display()))?;
            tracing::info!(file = %path.display(), "created the key of the secrets at rest");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the key file {}", path.display())),
    }
}

/// Opens (creating and migrating) the database behind the sealing layer; the first open
/// of a database an earlier version wrote converts its clear secrets.
fn open(db: &Location, key: &KeyArgs, options: Options) -> anyhow::Result<Opened> {
    let secret = secret_key(db, key)?;
    let (store, converted) = acs_core::store::open::open(db, secret, options)
        .with_context(|| format!("cannot open the database {db}"))?;
    if !converted.already {
        tracing::info!(
            records = converted.records,
            unique_keys = converted.unique_keys,
            applied = converted.applied,
            messages = converted.messages,
            replies = converted.replies,
            "secrets stored in clear converted to their form at rest"
        );
    }
    Ok(store)
}

/// The outbox directory: `--outbox-dir`, or `<db>.outbox` next to a SQLite database
/// (`acs-core.outbox` in the working directory for PostgreSQL).
fn outbox_dir_of(db: &Location, given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| match db {
        Location::Sqlite(path) => {
            let mut dir = path.as_os_str().to_owned();
            dir.push(".outbox");
            PathBuf::from(dir)
        }
        Location::Memory => PathBuf::from(":memory:.outbox"),
        Location::Postgres(_) => PathBuf::from("acs-core.outbox"),
    })
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
            key: key_args,
            pg_pool_size,
            listen,
            receiver,
            advertise,
            no_sync,
            readback_seconds,
            public_url,
            outbox_dir,
            smtp_url,
            smtp_from,
            instance_id,
            poll_ms,
            lease_ttl_ms,
            lease_renew_ms,
        } => {
            let db = Location::parse(&db);
            let options = Options {
                pool_size: pg_pool_size,
            };
            let store = open(&db, &key_args, options)?.into_store();
            let key = store.secret_key().cloned();
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let receiver_listener = tokio::net::TcpListener::bind(receiver)
                .await
                .with_context(|| format!("cannot listen on {receiver}"))?;
            let addr = listener.local_addr()?;
            let receiver_addr = receiver_listener.local_addr()?;
            let core = Core::new(store);
            if let Some(id) = &instance_id {
                core.set_instance_id(id);
            }
            let instance = core
                .start_instance(acs_core::app::InstanceOptions {
                    poll: std::time::Duration::from_millis(poll_ms.max(1)),
                    heartbeat_ttl: std::time::Duration::from_millis(lease_ttl_ms.max(1)),
                })
                .await
                .map_err(|e| anyhow::anyhow!("cannot follow the database: {}", e.detail))?;
            core.set_public_url(public_url.as_deref().unwrap_or(&format!("http://{addr}")));
            let outbox_dir = outbox_dir_of(&db, outbox_dir);
            let files: Arc<dyn Sender> = Arc::new(match key {
                Some(key) => FileSender::sealed(&outbox_dir, key),
                None => FileSender::new(&outbox_dir),
            });
            let senders = match (smtp_url, smtp_from) {
                (Some(url), Some(from)) => Senders {
                    email: Arc::new(SmtpSender::new(&url, &from).context("--smtp-url")?),
                    text: files,
                    webhook: None,
                },
                _ => Senders::all(files),
            };
            let delivery = tokio::spawn(acs_core::notify::delivery::run(core.clone(), senders));
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
                        readback_every: std::time::Duration::from_secs(readback_seconds.max(1)),
                        leases: Some(acs_core::sync::LeaseOptions {
                            ttl: std::time::Duration::from_millis(lease_ttl_ms.max(1)),
                            renew_every: std::time::Duration::from_millis(lease_renew_ms.max(1)),
                            ..acs_core::sync::LeaseOptions::default()
                        }),
                        ..SyncOptions::default()
                    },
                )
            });
            tracing::info!(%addr, receiver = %receiver_addr, %db, "integrator API listening");
            println!(
                "acs-core listening on http://{addr} (receiver http://{receiver_addr}, database {db})"
            );
            let stop = tokio_util::sync::CancellationToken::new();
            let receiver_task = tokio::spawn(acs_core::receiver::serve(
                receiver_listener,
                core.clone(),
                stop.clone().cancelled_owned(),
            ));
            let calls = core.clone();
            acs_core::serve(listener, core, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .context("server failed")?;
            stop.cancel();
            calls.terminal_calls().shutdown().await;
            delivery.abort();
            let _ = receiver_task.await;
            if let Some(engine) = engine {
                engine.shutdown().await;
            }
            instance.shutdown().await;
        }
        Command::Migrate { db, key } => {
            let db = Location::parse(&db);
            let store = open(&db, &key, Options::default())?;
            println!(
                "{db} is at schema version {}; its secrets are sealed or digested at rest",
                store.version().context("cannot read the schema version")?
            );
        }
        Command::Outbox {
            command: OutboxCommand::Open { db, key, file },
        } => {
            let key = secret_key(&Location::parse(&db), &key)?;
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let opened = acs_core::notify::file::open_body(&text, &key)
                .with_context(|| format!("cannot open the body of {}", file.display()))?;
            print!("{opened}");
        }
        Command::Tenant {
            command:
                TenantCommand::Create {
                    db,
                    key,
                    slug,
                    name,
                },
        } => {
            let store = open(&Location::parse(&db), &key, Options::default())?.into_store();
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
