//! WAD table poller (work in progress).
