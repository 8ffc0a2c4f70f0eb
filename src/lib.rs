//! hookrun: an OCI runtime with runc's command line that also runs Kubernetes-style lifecycle
//! hooks. `main.rs` only parses and dispatches; everything lives here so tests can call it.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod cgroup;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod container;
pub mod describe;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod exec;
pub mod foreground;
pub mod hooks;
pub mod info;
pub mod log;
pub mod monitor;
pub mod pause;
pub mod process;
pub mod ps;
pub mod rootfs;
pub mod rootless;
pub mod seccomp;
pub mod security;
pub mod spec;
pub mod state;
pub mod tty;
pub mod update;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const OCI_VERSION: &str = "1.2.0";
