use super::*;

fn write(p: &Path, content: &str, mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn ctx() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.txt"), "a", 0o644);
    write(&d.path().join("b.txt"), "b", 0o755);
    write(&d.path().join("dir/x"), "x", 0o600);
    write(&d.path().join("dir/sub/y"), "y", 0o644);
    d
}

#[test]
fn sources_wildcards_and_errors() {
    let c = ctx();
    let s = resolve_sources(c.path(), &["*.txt".into()], "COPY").unwrap();
    let names: Vec<_> = s.iter().map(|s| s.rel.as_str()).collect();
    assert_eq!(names, vec!["a.txt", "b.txt"]);
    let s = resolve_sources(c.path(), &["/dir".into()], "COPY").unwrap();
    assert!(s[0].is_dir);
    let e = resolve_sources(c.path(), &["missing-file".into()], "COPY").unwrap_err();
    assert_eq!(
        e.to_string(),
        "COPY failed: file not found in build context or excluded by .dockerignore: stat missing-file: file does not exist"
    );
    let e = resolve_sources(c.path(), &["../etc/passwd".into()], "COPY").unwrap_err();
    assert!(e.to_string().contains("outside the build context"), "{e}");
    let e = resolve_sources(c.path(), &["*.none".into()], "COPY").unwrap_err();
    assert_eq!(e.to_string(), "COPY failed: no source files were specified");
}

#[test]
fn links_stay_inside_the_root() {
    let c = ctx();
    std::os::unix::fs::symlink("/etc", c.path().join("evil")).unwrap();
    let p = scoped_join(c.path(), "evil/passwd", true).unwrap();
    assert!(p.starts_with(c.path()), "{p:?}");
    std::os::unix::fs::symlink("../../../../../..", c.path().join("up")).unwrap();
    let p = scoped_join(c.path(), "up/etc", true).unwrap();
    assert_eq!(p, c.path().join("etc"));
}

#[test]
fn hash_follows_content_not_mtime() {
    let c = ctx();
    let src = resolve_sources(c.path(), &["a.txt".into()], "COPY").unwrap();
    let h1 = hash_sources(&src).unwrap();
    assert!(h1.starts_with("file:"));
    let later = filetime::FileTime::from_unix_time(1_000_000, 0);
    filetime::set_file_mtime(c.path().join("a.txt"), later).unwrap();
    assert_eq!(hash_sources(&src).unwrap(), h1, "mtime does not count");
    write(&c.path().join("a.txt"), "changed", 0o644);
    assert_ne!(hash_sources(&src).unwrap(), h1);
    let dir = resolve_sources(c.path(), &["dir".into()], "COPY").unwrap();
    assert!(hash_sources(&dir).unwrap().starts_with("dir:"));
    let multi = resolve_sources(c.path(), &["a.txt".into(), "b.txt".into()], "COPY").unwrap();
    assert!(hash_sources(&multi).unwrap().starts_with("multi:"));
}

#[test]
fn destination_rules() {
    let c = ctx();
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join("existing")).unwrap();
    let plan = |srcs: &[&str], dest: &str| CopyPlan {
        sources: resolve_sources(
            c.path(),
            &srcs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "COPY",
        )
        .unwrap(),
        dest: dest.into(),
        owner: Some((1000, 1000)),
        extract_archives: false,
        chmod: None,
        exclude: None,
        op: "COPY".into(),
    };
    copy_into(root.path(), &plan(&["a.txt"], "/file")).unwrap();
    assert_eq!(fs::read_to_string(root.path().join("file")).unwrap(), "a");
    copy_into(root.path(), &plan(&["a.txt"], "/existing")).unwrap();
    assert!(
        root.path().join("existing/a.txt").is_file(),
        "an existing dir takes the file"
    );
    copy_into(root.path(), &plan(&["a.txt", "b.txt"], "/multi/")).unwrap();
    assert!(root.path().join("multi/b.txt").is_file());
    let md = fs::metadata(root.path().join("multi/b.txt")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o755);
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    copy_into(root.path(), &plan(&["dir"], "/d")).unwrap();
    assert!(
        root.path().join("d/x").is_file(),
        "a directory copies its contents"
    );
    assert!(root.path().join("d/sub/y").is_file());
    let e = copy_into(root.path(), &plan(&["a.txt", "b.txt"], "/nodir")).unwrap_err();
    assert!(
        e.to_string()
            .contains("must be a directory and end with a /"),
        "{e}"
    );
}

#[test]
fn chown_by_name_and_id() {
    let root = tempfile::tempdir().unwrap();
    write(
        &root.path().join("etc/passwd"),
        "root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n",
        0o644,
    );
    write(
        &root.path().join("etc/group"),
        "root:x:0:\napp:x:1003:\nstaff:x:50:\n",
        0o644,
    );
    assert_eq!(resolve_chown(root.path(), "app").unwrap(), (1001, 1003));
    assert_eq!(resolve_chown(root.path(), "app:staff").unwrap(), (1001, 50));
    assert_eq!(resolve_chown(root.path(), "7").unwrap(), (7, 7));
    assert_eq!(resolve_chown(root.path(), "7:8").unwrap(), (7, 8));
    assert!(resolve_chown(root.path(), "nobody").is_err());
}

#[test]
fn add_extracts_local_archives() {
    let c = tempfile::tempdir().unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o640);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "in/tar.txt", &b"hi"[..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &bytes).unwrap();
    fs::write(c.path().join("a.tar.gz"), gz.finish().unwrap()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let plan = CopyPlan {
        sources: resolve_sources(c.path(), &["a.tar.gz".into()], "ADD").unwrap(),
        dest: "/x/".into(),
        owner: None,
        extract_archives: true,
        chmod: None,
        exclude: None,
        op: "ADD".into(),
    };
    copy_into(root.path(), &plan).unwrap();
    assert_eq!(
        fs::read_to_string(root.path().join("x/in/tar.txt")).unwrap(),
        "hi"
    );
}

#[test]
fn unchanged_scratch_files_are_linked_not_copied() {
    // The build's scratch: the context and the step's layer on one filesystem.
    let scratch = tempfile::tempdir().unwrap();
    let c = scratch.path().join("ctx");
    write(&c.join("a.txt"), "a", 0o644);
    write(&c.join("dir/x"), "x", 0o600);
    write(&c.join("dir/sub/y"), "y", 0o755);
    let old = filetime::FileTime::from_unix_time(1_000_000, 0);
    filetime::set_file_mtime(c.join("dir/sub"), old).unwrap();
    let me = (
        fs::metadata(&c).unwrap().uid(),
        fs::metadata(&c).unwrap().gid(),
    );
    let upper = scratch.path().join("upper");
    fs::create_dir(&upper).unwrap();
    let plan = |srcs: &[&str], dest: &str, owner| CopyPlan {
        sources: resolve_sources(
            &c,
            &srcs.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "COPY",
        )
        .unwrap(),
        dest: dest.into(),
        owner: Some(owner),
        extract_archives: false,
        chmod: None,
        exclude: None,
        op: "COPY".into(),
    };
    let ino = |p: &Path| fs::metadata(p).unwrap().ino();

    let mut l = Linker::new(scratch.path(), &upper, &upper).unwrap();
    copy_into_linking(&upper, &plan(&["dir", "a.txt"], "/d/", me), Some(&mut l)).unwrap();
    assert_eq!(l.len(), 3);
    l.finish(me).unwrap();
    assert_eq!(ino(&upper.join("d/x")), ino(&c.join("dir/x")), "linked");
    assert_eq!(ino(&upper.join("d/sub/y")), ino(&c.join("dir/sub/y")));
    assert_eq!(fs::read_to_string(upper.join("d/a.txt")).unwrap(), "a");
    let md = fs::metadata(upper.join("d/sub")).unwrap();
    assert_eq!(
        filetime::FileTime::from_last_modification_time(&md),
        old,
        "a copied directory keeps its mtime after the links"
    );

    // Another owner (--chown) needs a copy; so does a name that exists already, and a
    // second name for one inode in the same step.
    let other = (me.0 + 1, me.1 + 1);
    let mut l = Linker::new(scratch.path(), &upper, &upper).unwrap();
    copy_into_linking(&upper, &plan(&["a.txt"], "/owned", other), Some(&mut l)).unwrap();
    copy_into_linking(&upper, &plan(&["a.txt"], "/d/a.txt", me), Some(&mut l)).unwrap();
    copy_into_linking(&upper, &plan(&["a.txt"], "/once", me), Some(&mut l)).unwrap();
    copy_into_linking(&upper, &plan(&["a.txt"], "/twice", me), Some(&mut l)).unwrap();
    assert_eq!(l.len(), 1, "only /once is a link");
    l.finish(me).unwrap();
    assert_ne!(ino(&upper.join("owned")), ino(&c.join("a.txt")));
    let md = fs::metadata(upper.join("owned")).unwrap();
    assert_eq!((md.uid(), md.gid()), other);
    assert_ne!(ino(&upper.join("d/a.txt")), ino(&c.join("a.txt")));
    assert_eq!(ino(&upper.join("once")), ino(&c.join("a.txt")));
    assert_ne!(ino(&upper.join("twice")), ino(&c.join("a.txt")));

    // Files outside the build's scratch are never linked.
    let elsewhere = tempfile::tempdir().unwrap();
    let none = Linker::new(&elsewhere.path().join("none"), &upper, &upper);
    assert!(
        none.is_none(),
        "a scratch that does not exist links nothing"
    );
    let mut l2 = Linker::new(&upper.join("d"), &upper, &upper).unwrap();
    copy_into_linking(&upper, &plan(&["a.txt"], "/outside", me), Some(&mut l2)).unwrap();
    assert!(l2.is_empty());
}
