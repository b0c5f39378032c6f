//! Build contexts and `berth build` runs for the build end-to-end tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use super::TestDaemon;

/// A daemon with busybox imported, where every build test starts.
pub fn daemon() -> TestDaemon {
    let d = TestDaemon::start();
    d.import_busybox();
    d
}

/// A context directory `name` holding only `dockerfile`.
pub fn dockerfile_context(d: &TestDaemon, name: &str, dockerfile: &str) -> PathBuf {
    context(d, name, &[("Dockerfile", dockerfile)])
}

/// A context directory `name` under the daemon's dir holding `files` (path, content).
pub fn context(d: &TestDaemon, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = d.dir.join(name);
    for (f, content) in files {
        let p = dir.join(f);
        fs::create_dir_all(p.parent().expect("a file path has a parent")).unwrap();
        fs::write(&p, content).unwrap();
    }
    dir
}

/// `berth build EXTRA… CTX`.
pub fn build(d: &TestDaemon, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let c = ctx.to_str().expect("a UTF-8 context path").to_string();
    args.push(&c);
    d.berth(&args)
}
