//! SIGINT/SIGTERM → graceful stop. A second signal exits at once (exit status 130).
use tokio::sync::watch;

/// A receiver that turns true on the first SIGINT or SIGTERM. Must be called inside a runtime.
pub fn shutdown_signal() -> std::io::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                count += 1;
                if count == 1 {
                    tracing::info!(signal = name, "stopping: draining in-flight batches and writing final checkpoints (send the signal again to exit at once)");
                    let _ = tx.send(true);
                } else {
                    tracing::warn!(signal = name, "second signal: exiting without draining");
                    std::process::exit(130);
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            let mut count = 0;
            while tokio::signal::ctrl_c().await.is_ok() {
                count += 1;
                if count == 1 {
                    let _ = tx.send(true);
                } else {
                    std::process::exit(130);
                }
            }
        });
    }
    Ok(rx)
}
