//! The WAD table poller: Windows event logs that the Azure Diagnostics extension (WAD) writes
//! into the storage table `WADWindowsEventLogsTable`, read over the Table REST API and mapped
//! through the `windows.wad` / `windows.security` schema tables.
//!
//! * [`table`]: the Table service client (OData JSON, `$filter`, continuation, SharedKey /
//!   SharedKeyLite / SAS, retries for 503 `ServerBusy` and 500 `OperationTimedOut`).
//! * [`poller`]: the poll loop over PartitionKey windows (`"0"` + .NET ticks, one partition
//!   per minute) with lag and overlap for late rows, dedup inside the overlap, several
//!   accounts and tables at once, batches acknowledged after the sinks took them.
//! * [`state`]: the window and delivery bookkeeping (pure, unit-tested).
//! * [`watermark`]: the checkpoint per table and the store trait (file store included).
//! * [`row`] / [`records`]: page → rows → canonical records or dead letters.
//! * [`config`]: the `[source.wad]` settings.
//!
//! ```no_run
//! # async fn demo(mapper: azlog_mapper::Mapper, specs: Vec<azlog_wad::TableSpec>) {
//! use std::sync::Arc;
//! use azlog_wad::{FileWatermarkStore, PollOptions, WadSource};
//! let store = Arc::new(FileWatermarkStore::new("state/wad"));
//! let mut source = WadSource::start(specs, store, PollOptions::default());
//! while let Some(batch) = source.next_batch().await {
//!     let (records, dead_letters) = batch.map(&mapper, azlog_mapper::deadletter::now_ns());
//!     // ... deliver `records` to the sinks, write `dead_letters` to the dead-letter store ...
//!     # let _ = (records, dead_letters);
//!     batch.ack(); // after every sink acknowledged: the watermark may move past these rows
//! }
//! # }
//! ```
pub mod config;
pub mod error;
pub mod poller;
pub mod records;
pub mod retry;
pub mod row;
pub mod state;
pub mod table;
pub mod ticks;
pub mod watermark;

pub use config::{WadAccountConfig, WadConfig, DEFAULT_TABLE};
pub use error::{StoreError, TableError};
pub use poller::{BatchAck, PollOptions, TableSpec, TableStats, WadBatch, WadSource};
pub use records::{map_row, map_rows, position, RecordExtras};
pub use retry::RetryPolicy;
pub use row::WadRow;
pub use table::{Continuation, Page, Query, TableClient, TableClientOptions};
pub use watermark::{FileWatermarkStore, MemoryWatermarkStore, Watermark, WatermarkStore};
