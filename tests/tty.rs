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

#[test]
fn the_terminal_belongs_to_the_process_uid_and_keeps_the_devpts_group() {
    if !require_root() {
        return;
    }
    // As runc leaves it: the uid is the process's, the group is devpts' gid=5 (tty) from the
    // /dev/pts mount, whatever the process's gid.
    for (uid, gid) in [(0, 0), (1000, 100)] {
        let mut b = tty_bundle("stat -c %u:%g $(tty)");
        b.edit(|c| c["process"]["user"] = serde_json::json!({"uid": uid, "gid": gid}));
        let c = Ctr::new("ttyowner");
        let (code, out, err) = c.run_fg(&b);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), format!("{uid}:5"), "run as {uid}:{gid}");

        let b = Bundle::new(&["sleep", "1000"]);
        let c = Ctr::new("ttyexec");
        c.create_bg(&b);
        c.ok(&["start", "{id}"]);
        let user = format!("{uid}:{gid}");
        let o = c.run_files(&[
            "exec",
            "-t",
            "-u",
            &user,
            "{id}",
            "sh",
            "-c",
            "stat -c %u:%g $(tty)",
        ]);
        assert_eq!(o.code, Some(0), "{}", o.stderr);
        assert_eq!(o.stdout.trim(), format!("{uid}:5"), "exec as {user}");
    }
}

#[test]
fn inherited_pipes_are_given_to_the_process_uid_and_dev_null_is_not() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("stdioowner");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    // Ctr::run gives a pipe as stdout and /dev/null as stdin.
    let out = c.ok(&[
        "exec",
        "-u",
        "1000:1000",
        "{id}",
        "sh",
        "-c",
        "stat -L -c %u /proc/self/fd/1 /proc/self/fd/0",
    ]);
    assert_eq!(out, "1000\n0\n");
    let null = std::fs::metadata("/dev/null").unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&null), 0);
}

#[test]
fn exec_with_a_process_json_honours_its_console_size() {
    if !require_root() {
        return;
    }
    let b = Bundle::new(&["sleep", "1000"]);
    let c = Ctr::new("execsize");
    c.create_bg(&b);
    c.ok(&["start", "{id}"]);
    let pj = c.root.path().join("process.json");
    std::fs::write(
        &pj,
        serde_json::json!({
            "terminal": true, "consoleSize": {"height": 10, "width": 110},
            "args": ["/bin/sh", "-c", "stty size; echo done"], "cwd": "/"
        })
        .to_string(),
    )
    .unwrap();
    let sock = c.root.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let got = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        let mut buf = [0u8; 64];
        let (_, fd) = hookrun::process::channel::recv_with_fd(s.as_raw_fd(), &mut buf).unwrap();
        fd.expect("an fd came with the message")
    });
    let o = c.run_files(&[
        "exec",
        "-t",
        "-d",
        "--console-socket",
        sock.to_str().unwrap(),
        "-p",
        pj.to_str().unwrap(),
        "{id}",
    ]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let mut f = std::fs::File::from(got.join().unwrap());
    let (mut out, mut buf) = (String::new(), [0u8; 4096]);
    while !out.contains("done") {
        let n = f.read(&mut buf).unwrap();
        assert!(n > 0, "pty closed early: {out:?}");
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(out.contains("10 110"), "{out:?}");
}
