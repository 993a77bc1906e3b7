//! Envelope decoding.
