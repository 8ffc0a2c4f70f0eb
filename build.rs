//! Build script: records the git commit the binary is built from, for `hookrun --version`'s
//! `commit:` line (as runc's). `HOOKRUN_COMMIT` in the environment wins (release builds from a
//! tarball); without git or a repository the line says `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(o.stdout).ok()?;
    (o.status.success() && !s.trim().is_empty()).then(|| s.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=HOOKRUN_COMMIT");
    let commit = std::env::var("HOOKRUN_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]));
    if let Some(c) = commit {
        println!("cargo:rustc-env=HOOKRUN_COMMIT={c}");
    }
    // A new commit moves HEAD (or the branch it names): build again to pick it up.
    // (A path that does not exist would make every build rerun this script.)
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    watch.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for p in watch {
        if let Some(path) = git(&["rev-parse", "--git-path", &p]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
