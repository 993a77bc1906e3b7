//! `azlog-emulator`: standalone Event Hubs emulator (same flags as `azlog-hub emulator`).

use clap::Parser;

/// Local Event Hubs-compatible AMQP 1.0 server.
#[derive(Debug, Parser)]
#[command(name = "azlog-emulator", version, about)]
struct Cli {
    #[command(flatten)]
    emulator: azlog_emulator::EmulatorArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    azlog_emulator::run(Cli::parse().emulator).await
}
