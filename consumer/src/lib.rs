//! azlog-hub: sources, router, sink host, checkpoints, CLI.
