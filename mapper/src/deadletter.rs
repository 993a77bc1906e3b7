//! Dead-letter store.
