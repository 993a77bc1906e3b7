//! azlog-emulator
