//! cef codec
