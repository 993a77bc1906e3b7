//! Azure Storage REST plumbing, now the `azlog-azure-storage` crate (shared with the WAD poller).
pub use azlog_azure_storage::*;
