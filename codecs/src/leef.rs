//! leef codec
