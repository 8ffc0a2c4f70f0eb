//! process.terminal: the pty handed to --console-socket, the foreground proxy, and the refusal
//! of a detached terminal without a socket.
mod common;
use common::*;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

fn tty_bundle(script: &str) -> Bundle {
    let mut b = Bundle::new(&["/bin/sh", "-c", script]);
    b.edit(|c| {
        c["process"]["terminal"] = serde_json::json!(true);
        c["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 101});
    });
    b
}

#[test]
fn console_socket_receives_the_pty_master() {
    if !require_root() {
        return;
    }
    let b = tty_bundle("tty; stty size; echo done-$((6*7)); sleep 1000");
    let c = Ctr::new("console");
    let sock = c.root.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let (_, fd) = hookrun::process::channel::recv_with_fd(s.as_raw_fd(), &mut buf).unwrap();
        fd.expect("an fd came with the message")
    });
    let o = c.run_files(&[
        "create",
        "-b",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        "{id}",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let master = got.join().unwrap();
    c.ok(&["start", "{id}"]);
    let mut f = std::fs::File::from(master);
    let mut out = String::new();
    let mut buf = [0u8; 4096];
    while !out.contains("done-42") {
        let n = f.read(&mut buf).unwrap();
        assert!(n > 0, "pty closed early: {out:?}");
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("33 101"), "consoleSize not applied: {out:?}");
}

#[test]
fn a_detached_terminal_without_console_socket_is_refused_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let b = tty_bundle("true");
    let c = Ctr::new("notty");
    let err = c.fails(&["create", "-b", b.path().to_str().unwrap(), "{id}"]);
    assert!(
        err.contains("process.terminal") && err.contains("--console-socket"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(c.root.path()).unwrap().count(), 0);
}

#[test]
fn foreground_run_proxies_the_terminal() {
    if !require_root() {
        return;
    }
    let b = tty_bundle("tty; stty size; echo out-$((2+3)); exit 4");
    let c = Ctr::new("fgtty");
    let (code, out, err) = c.run_fg(&b);
    assert_eq!(code, 4, "{err}");
    assert!(out.contains("/dev/pts/0"), "{out:?}");
    assert!(out.contains("33 101"), "{out:?}");
    assert!(out.contains("out-5"), "{out:?}");
}
