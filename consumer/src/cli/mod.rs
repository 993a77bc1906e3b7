//! Command-line interface: parses arguments and dispatches to one module per subcommand.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check_config;
pub mod demo;
pub mod map;
mod map_batch;
mod map_jobs;
pub mod replay;
pub mod run;
pub mod source;

/// Moves Azure security logs into SIEMs.
#[derive(Parser, Debug)]
#[command(name = "azlog-hub", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole path locally: emulator → consumer → mapper → CEF/LEEF/Splunk/ECS files.
    Demo(demo::DemoArgs),
    /// Serve a local Event Hubs-compatible AMQP endpoint (for tests, demos, benchmarks).
    Emulator(azlog_emulator::EmulatorArgs),
    /// Map records from files or stdin and print them (ECS JSON, CEF, LEEF or Splunk HEC JSON).
    Map(map::MapArgs),
    /// Run the service: read Event Hubs, map, deliver to the sinks, checkpoint.
    Run(run::RunArgs),
    /// Re-read a range of the hub into chosen sinks, or re-send a dead-letter file.
    Replay(replay::ReplayArgs),
    /// Validate a configuration file without connecting anywhere.
    CheckConfig(check_config::CheckConfigArgs),
    /// Manage WAD table sources in the configuration file (add, list, remove).
    Source(source::SourceArgs),
}

/// Entry point used by the binary.
pub fn main() -> ExitCode {
    init_tracing();
    crate::source::eventhubs::ensure_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Map(args) => map::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Emulator(args) => run_emulator(args),
        Command::Run(args) => run::run(args),
        Command::Replay(args) => replay::run(args),
        Command::CheckConfig(args) => check_config::run(args),
        Command::Source(args) => source::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("azlog-hub: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr; `RUST_LOG` filters (default `info`, with the Azure SDK crates at `warn`:
/// their `info` lines are per-link chatter), `AZLOG_LOG_FORMAT=json` switches to JSON lines.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,azure_core_amqp=warn,azure_messaging_eventhubs=warn,azure_core=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("AZLOG_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn run_emulator(args: azlog_emulator::EmulatorArgs) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(azlog_emulator::run(args))?;
    Ok(ExitCode::SUCCESS)
}
