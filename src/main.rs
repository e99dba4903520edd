//! The `orgsync` command line: parse, load the configuration, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use orgsync::app::{tokens, Role};
use orgsync::config::Settings;
use orgsync::crypto::{self, KeyRing};
use orgsync::projections::Projector;
use orgsync::startup::{check_keys, open_store, Application};
use orgsync::store::{reseal, Store};

/// glibc's allocator, with its arena per thread, left a harvest of 100,000 accounts holding
/// about twice the memory it used (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Keeps a cloud-security inventory in step with AWS Organizations"
)]
struct Cli {
    /// Configuration file, layered over the built-in defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: API, scheduler and harvests.
    Serve,
    /// Apply the store's pending migrations and exit.
    Migrate,
    /// Rebuild every read table from the event log.
    RebuildProjections,
    /// Check the configuration, and that the key file opens what the store holds sealed
    /// (changing neither), and exit: 0 when `serve` can start with them.
    CheckConfig,
    /// Add a new sealing key, re-seal every stored secret under it, then drop the old keys.
    /// Safe while the daemon runs: it follows the key file.
    RotateKey,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it, once.
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        role: Role,
        /// A unique name; events the token causes carry it.
        #[arg(long)]
        name: String,
        /// How long it stays valid, e.g. `90d` or `12h`; forever when left out.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
    },
    /// List every token: name, role, created, last used, expires, revoked; never a secret.
    List,
    /// Revoke a token for good: every instance refuses it within a second.
    Revoke {
        /// The token's name.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("orgsync: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    if let Command::CheckConfig = cli.command {
        // What the store is made of and whether the key opens it go beside the verdict, which
        // stays the only stdout line.
        if settings.store.events_url.is_empty() {
            eprintln!("event log: in the store's database, beside the read tables");
        } else {
            eprintln!("event log: KurrentDB at store.events_url; read tables at store.url");
        }
        match runtime.block_on(check_keys(&settings)) {
            Ok(keys) => eprintln!("{keys}"),
            Err(e) => {
                eprintln!("orgsync: {e}");
                return ExitCode::FAILURE;
            }
        }
        println!("configuration is valid");
        return ExitCode::SUCCESS;
    }
    orgsync::telemetry::init(&settings.log);
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orgsync: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve => {
            let application = Application::build(settings).await?;
            application.run_until_stopped().await?;
        }
        Command::Migrate => {
            open_store(&settings).await?.close().await;
            println!("migrations applied");
        }
        Command::RebuildProjections => {
            let store = open_store(&settings).await?;
            let applied = Projector::new(store.clone()).rebuild().await?;
            store.close().await;
            println!("read tables rebuilt from {applied} events");
        }
        Command::CheckConfig => unreachable!("answered before telemetry starts"),
        Command::RotateKey => {
            let store = open_store(&settings).await?;
            let key_file = settings.key_file();
            let new_key = crypto::add_key(&key_file)?;
            let keys = KeyRing::load(&key_file)?;
            let rewritten = reseal(&store, &keys).await?;
            // A daemon that sealed something under the old key meanwhile left it for a
            // second pass; only when one finds nothing may the old keys go.
            let stragglers = reseal(&store, &keys).await?;
            // The read tables keep copies of the log's sealed values: rebuilt, they hold the
            // re-sealed ones.
            Projector::new(store.clone()).rebuild().await?;
            store.close().await;
            if !store.events_beside_read_tables() {
                println!(
                    "sealing key {new_key}: new values are sealed under it and {rewritten} stored \
                     ones were re-sealed; old keys kept for the events in KurrentDB, which \
                     cannot be rewritten"
                );
            } else if stragglers == 0 {
                crypto::drop_old_keys(&key_file)?;
                println!("sealing key {new_key}: re-sealed {rewritten} values; old keys dropped");
            } else {
                println!(
                    "sealing key {new_key}: re-sealed {} values; old keys kept because values \
                     were sealed under them meanwhile: run rotate-key again",
                    rewritten + stragglers
                );
            }
        }
        Command::Token { command } => {
            let store = open_store(&settings).await?;
            let outcome = token_command(command, &store, &settings).await;
            store.close().await;
            outcome?;
        }
    }
    Ok(())
}

async fn token_command(
    command: TokenCommand,
    store: &Store,
    settings: &Settings,
) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        TokenCommand::Create {
            role,
            name,
            expires_in,
        } => {
            let (_, token) = tokens::create(store.pool(), role, &name, expires_in).await?;
            let file = settings.admin_token_file();
            if role == Role::Admin && tokens::retire_initial_admin_file(store.pool(), &file).await?
            {
                eprintln!("removed {}: another admin token exists", file.display());
            }
            println!("{}", token.expose());
        }
        TokenCommand::List => {
            let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or_else(
                    || "-".to_owned(),
                    |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                )
            };
            println!("NAME\tROLE\tCREATED\tLAST USED\tEXPIRES\tREVOKED");
            for token in tokens::list(store.pool()).await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    token.name,
                    token.role.as_str(),
                    at(Some(token.created_at)),
                    at(token.last_used_at),
                    at(token.expires_at),
                    at(token.revoked_at),
                );
            }
        }
        TokenCommand::Revoke { name } => {
            tokens::revoke(store.pool(), &name).await?;
            println!("token {name:?} revoked");
        }
    }
    Ok(())
}
