//! hec codec
