//! Loading, checking and compiling schema tables into a plan.
