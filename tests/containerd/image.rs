//! The busybox fixture as an OCI image layout (one uncompressed layer), imported into the
//! private containerd. runs in: the test process.

use crate::common::*;
use crate::daemon::{Containerd, IMAGE};

use std::path::Path;
use std::process::Command;

use serde_json::json;

/// The sha256 digest and size of `file`, which is moved into the image's blob store.
fn blob(blobs: &Path, file: &Path) -> serde_json::Value {
    let o = Command::new("sha256sum").arg(file).output().unwrap();
    assert!(o.status.success(), "sha256sum {}", file.display());
    let digest = String::from_utf8(o.stdout).unwrap()[..64].to_string();
    let size = std::fs::metadata(file).unwrap().len();
    std::fs::rename(file, blobs.join(&digest)).unwrap();
    json!({"digest": format!("sha256:{digest}"), "size": size})
}

fn blob_of(blobs: &Path, bytes: &[u8]) -> serde_json::Value {
    let tmp = blobs.join("new");
    std::fs::write(&tmp, bytes).unwrap();
    blob(blobs, &tmp)
}

impl Containerd {
    /// An OCI image layout of the busybox fixture (one uncompressed layer), imported.
    pub fn import_image(&self) {
        let layout = self.dir.path().join("image");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let layer = self.dir.path().join("layer.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(fixture_rootfs())
            .arg("-cf")
            .arg(&layer)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success(), "tar of the fixture rootfs");
        let layer = blob(&blobs, &layer);
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            a => a,
        };
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/bin:/sbin:/usr/bin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}
        });
        let config = blob_of(&blobs, config.to_string().as_bytes());
        let media = |t: &str, b: &serde_json::Value| json!({"mediaType": t, "digest": b["digest"], "size": b["size"]});
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": media("application/vnd.oci.image.config.v1+json", &config),
            "layers": [media("application/vnd.oci.image.layer.v1.tar", &layer)]
        });
        let manifest = blob_of(&blobs, manifest.to_string().as_bytes());
        let mut entry = media("application/vnd.oci.image.manifest.v1+json", &manifest);
        entry["annotations"] = json!({"io.containerd.image.name": IMAGE});
        let index = json!({"schemaVersion": 2, "manifests": [entry]});
        std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let tar = self.dir.path().join("image.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&layout)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .unwrap();
        assert!(st.success());
        self.ctr_ok(&["images", "import", tar.to_str().unwrap()]);
    }
}
