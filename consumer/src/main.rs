//! The `azlog-hub` command.

// mimalloc: mapping allocates one string per output key and value, and the system allocator's
// malloc/free was ~20 % of the service's profile. Plugins keep their own allocator; everything
// that crosses the plugin boundary is an abi_stable type that frees through its own vtable.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    azlog_hub::cli::main()
}
