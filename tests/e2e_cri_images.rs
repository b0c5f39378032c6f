//! CRI ImageService end to end on Berth's one image store: what `berth images` lists,
//! CRI lists; pulls from a local registry (with the request's auth), status, removal,
//! image filesystem usage, and bad references.

mod common;
#[path = "common/cri.rs"]
mod cri;
#[allow(unused_imports)]
use common::registry::{RegistryAuth, TestRegistry};

use common::TestDaemon;
use cri::{cri_daemon, v1, Cri};

fn spec(image: &str) -> Option<v1::ImageSpec> {
    Some(v1::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

fn list(c: &Cri) -> Vec<v1::Image> {
    c.run(c.img().list_images(v1::ListImagesRequest::default()))
        .expect("ListImages")
        .into_inner()
        .images
}

fn status(c: &Cri, image: &str) -> Option<v1::Image> {
    c.run(c.img().image_status(v1::ImageStatusRequest {
        image: spec(image),
        verbose: false,
    }))
    .expect("ImageStatus")
    .into_inner()
    .image
}

fn pull(c: &Cri, image: &str, auth: Option<v1::AuthConfig>) -> Result<String, tonic::Status> {
    c.run(c.img().pull_image(v1::PullImageRequest {
        image: spec(image),
        auth,
        sandbox_config: None,
    }))
    .map(|r| r.into_inner().image_ref)
}

fn remove(c: &Cri, image: &str) {
    c.run(
        c.img()
            .remove_image(v1::RemoveImageRequest { image: spec(image) }),
    )
    .expect("RemoveImage");
}

/// Pushes busybox to `reg` as `name` and removes it locally (for a CRI pull).
fn push_busybox(d: &TestDaemon, name: &str) {
    d.import_busybox();
    d.berth_ok(&["tag", "busybox", name]);
    d.berth_ok(&["push", name]);
    d.berth_ok(&["rmi", name, "busybox"]);
    assert_eq!(d.berth_ok(&["images", "-q"]).trim(), "");
}

#[test]
fn cri_and_docker_list_the_same_images() {
    let (d, c) = cri_daemon();
    assert!(list(&c).is_empty());
    d.import_busybox();
    let id = d
        .berth_ok(&["images", "-q", "--no-trunc"])
        .trim()
        .to_string();
    let images = list(&c);
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0].id, id);
    assert_eq!(images[0].repo_tags, ["docker.io/library/busybox:latest"]);
    assert!(images[0].size > 0);
    let one = status(&c, "busybox").expect("busybox by its short name");
    assert_eq!(one.id, id);
    assert_eq!(status(&c, &id).expect("busybox by ID").id, id);
    assert!(status(&c, "nothing-here:v1").is_none());
    // The verbose status carries the image's inspect JSON.
    let verbose = c
        .run(c.img().image_status(v1::ImageStatusRequest {
            image: spec("busybox"),
            verbose: true,
        }))
        .expect("ImageStatus verbose")
        .into_inner();
    let info: serde_json::Value =
        serde_json::from_str(&verbose.info["info"]).expect("info is JSON");
    assert_eq!(info["Id"], id.as_str());
}

#[test]
fn pull_status_and_remove_through_cri() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let (d, c) = cri_daemon();
    let name = format!("{}/cri/bb:v1", reg.addr);
    push_busybox(&d, &name);

    let image_ref = pull(&c, &name, None).expect("PullImage");
    assert!(image_ref.starts_with("sha256:"), "{image_ref}");
    let docker_ids = d.berth_ok(&["images", "-q", "--no-trunc"]);
    assert_eq!(docker_ids.trim(), image_ref);
    let got = status(&c, &name).expect("the pulled image");
    assert_eq!(got.id, image_ref);
    assert_eq!(got.repo_tags, std::slice::from_ref(&name));
    assert_eq!(got.repo_digests.len(), 1, "{got:?}");
    // A second pull is a no-op answer with the same image.
    assert_eq!(pull(&c, &name, None).expect("PullImage again"), image_ref);

    remove(&c, &name);
    assert!(status(&c, &name).is_none());
    assert_eq!(d.berth_ok(&["images", "-q"]).trim(), "");
    // Removing what is gone is done, not an error.
    remove(&c, &name);
}

#[test]
fn pull_uses_the_requests_auth() {
    let auth = RegistryAuth::Basic {
        user: "kube".into(),
        password: "s3cret".into(),
    };
    let reg = TestRegistry::start(auth);
    let (d, c) = cri_daemon();
    let name = format!("{}/cri/private:v1", reg.addr);
    d.import_busybox();
    d.berth_ok(&["tag", "busybox", &name]);
    let login = d.berth(&["login", "-u", "kube", "-p", "s3cret", &reg.addr]);
    common::assert_success(&login, "berth login");
    d.berth_ok(&["push", &name]);
    d.berth_ok(&["rmi", &name]);

    let denied = pull(&c, &name, None).expect_err("no credentials");
    assert!(
        denied
            .message()
            .starts_with("failed to pull and unpack image"),
        "{denied:?}"
    );
    let creds = v1::AuthConfig {
        username: "kube".into(),
        password: "s3cret".into(),
        server_address: reg.addr.clone(),
        ..Default::default()
    };
    let id = pull(&c, &name, Some(creds)).expect("PullImage with credentials");
    assert_eq!(status(&c, &name).expect("pulled").id, id);
}

#[test]
fn bad_references_and_missing_images() {
    let reg = TestRegistry::start(RegistryAuth::Open);
    let (d, c) = cri_daemon();
    let bad = pull(&c, "Not A Valid//Ref", None).expect_err("a bad reference");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    let empty = pull(&c, "", None).expect_err("an empty reference");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument, "{empty:?}");
    let missing = format!("{}/nope/nothing:v1", reg.addr);
    let err = pull(&c, &missing, None).expect_err("nothing to pull");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    assert!(list(&c).is_empty(), "a failed pull left an image");
    assert_eq!(d.berth_ok(&["images", "-q"]).trim(), "");
}

#[test]
fn image_fs_info_counts_the_layers() {
    let (d, c) = cri_daemon();
    d.import_busybox();
    let info = c
        .run(c.img().image_fs_info(v1::ImageFsInfoRequest {}))
        .expect("ImageFsInfo")
        .into_inner();
    let fs = &info.image_filesystems[0];
    let mount = &fs.fs_id.as_ref().expect("an fs id").mountpoint;
    assert!(
        mount.starts_with(d.root.to_str().expect("utf-8 root")),
        "{mount}"
    );
    assert!(fs.used_bytes.as_ref().expect("used bytes").value > 0);
    assert!(fs.inodes_used.as_ref().expect("inodes").value > 0);
}
