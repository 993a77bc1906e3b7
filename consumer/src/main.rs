//! The `azlog-hub` command.

// mimalloc: mapping allocates one string per output key and value, and the system allocator's
// malloc/free was ~20 % of the service's profile. Plugins keep their own allocator; everything
// that crosses the plugin boundary is an abi_stable type that frees through its own vtable.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tune_allocator();
    azlog_hub::cli::main()
}

// The C library linked by the `mimalloc` crate exports these whatever the crate's features;
// `mi_option_t` values as in mimalloc.h of libmimalloc-sys 0.1.49 (mimalloc 2.x).
extern "C" {
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
/// mimalloc's documented default purge delay (ms), used to check that the option index is right.
const MI_DEFAULT_PURGE_DELAY: std::ffi::c_long = 10;
/// Purge delay for the service (ms).
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

/// Freed memory stays with mimalloc for a second instead of 10 ms before it is returned to the
/// OS: the pipeline allocates and frees in bursts per event (event bodies, records, batches), and
/// with the default every burst faulted fresh zeroed pages in again (`clear_page_erms` + page
/// faults were ~5 % of the end-to-end profile; the file-sink run used ~20 % less CPU without
/// purging). `MIMALLOC_PURGE_DELAY` in the environment still wins.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: plain option getters/setters of the linked allocator; safe to call at any time.
    unsafe {
        if mi_option_get(MI_OPTION_PURGE_DELAY) == MI_DEFAULT_PURGE_DELAY {
            mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
        }
    }
}
