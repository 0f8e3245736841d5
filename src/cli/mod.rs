//! The command line: clap's types and the settings built from them.

pub mod args;
