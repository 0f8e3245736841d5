//! The command line: clap's types, the settings built from them, and the commands.

pub mod args;
pub mod commands;
