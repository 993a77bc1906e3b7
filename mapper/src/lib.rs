//! Envelope decoding, schema tables and the mapper: raw bytes in, canonical records out.
