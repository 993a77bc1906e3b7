//! The `azlog-hub` command.
fn main() -> std::process::ExitCode {
    azlog_hub::cli::main()
}
