//! The smallest end-to-end check: `hookrun run` of a busybox bundle passes the entrypoint's
//! output and exit code through and leaves no state behind.
mod common;
use common::*;

#[test]
fn run_passes_the_entrypoints_output_and_exit_code_through() {
    if !require_root() {
        return;
    }
    // A code of its own and output only the container can make: a runtime that ran nothing
    // (or ran it on the host) cannot fake either.
    let mut b = sh("echo smoke-$((6*7)) $(hostname); exit 7");
    b.edit(|c| c["hostname"] = "smoke-box".into());
    let c = Ctr::new("smoke");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 7, "{err}");
    assert_eq!(out, "smoke-42 smoke-box\n", "{err}");
    assert!(!c.state_dir().exists());
}
