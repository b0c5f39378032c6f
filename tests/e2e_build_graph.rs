//! Builds as a stage graph: stages the target does not need are not built, independent
//! stages run at the same time (their RUN steps overlap: checked from the times the
//! steps themselves wrote, never from the build's wall time), each line of a stage
//! running beside others is tagged with it, and a failing stage stops the others and
//! leaves nothing behind.

mod common;

use std::fs;

use common::build_context::{daemon, dockerfile_context as context};
use common::*;

const PARALLEL: &str = "FROM busybox AS a
RUN date +%s > /start && sleep 3 && date +%s > /end
FROM busybox AS b
RUN date +%s > /start && sleep 3 && date +%s > /end
FROM busybox AS unused
RUN echo never-built
FROM busybox
COPY --from=a /start /a.start
COPY --from=a /end /a.end
COPY --from=b /start /b.start
COPY --from=b /end /b.end
CMD cat /a.start /a.end /b.start /b.end
";

/// The four times the final image holds: a's start and end, b's start and end.
fn times(d: &TestDaemon, image: &str) -> Vec<u64> {
    let out = d.berth_ok(&["run", "--rm", image]);
    let t: Vec<u64> = out.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(t.len(), 4, "{out}");
    t
}

fn check_tagged(text: &str) {
    assert!(!text.contains("never-built"), "{text}");
    assert!(text.contains("[a] Step "), "{text}");
    assert!(text.contains("[b] Step "), "{text}");
    assert!(text.contains("[stage-3] Step "), "{text}");
    assert!(text.contains("\nSuccessfully built "), "{text}");
    for l in text.lines() {
        let tagged = l.starts_with("[a] ") || l.starts_with("[b] ") || l.starts_with("[stage-3] ");
        let docker = l.starts_with("Sending build context")
            || l.starts_with("Successfully ")
            || l.starts_with("DEPRECATED")
            || l.trim().is_empty()
            || l.starts_with("            ")
            || l.starts_with("Install the buildx")
            || l.starts_with("BuildKit");
        assert!(
            tagged || docker,
            "line {l:?} is neither tagged nor Docker's in\n{text}"
        );
    }
}

#[test]
fn independent_stages_overlap_and_unneeded_ones_are_skipped() {
    let d = daemon();
    let ctx = context(&d, "par", PARALLEL);
    let out = d.berth(&["build", "--no-cache", "-t", "par:1", ctx.to_str().unwrap()]);
    assert_success(&out, "berth build");
    let text = stdout(&out);
    check_tagged(&text);
    let t = times(&d, "par:1");
    // Each stage's RUN started before the other's ended: they ran at the same time.
    assert!(
        t[0] < t[3] && t[2] < t[1],
        "a {}..{}, b {}..{}",
        t[0],
        t[1],
        t[2],
        t[3]
    );
    // The unused stage left no image: busybox, the stages' steps and the final ones.
    let history = d.berth_ok(&["history", "-q", "par:1"]);
    assert!(!history.is_empty());

    // A target builds what it needs only, in Docker's classic stream (one stage).
    let out = d.berth(&[
        "build",
        "--target",
        "b",
        "-t",
        "par:b",
        ctx.to_str().unwrap(),
    ]);
    assert_success(&out, "berth build --target b");
    let text = stdout(&out);
    assert!(text.contains("Step 1/2 : FROM busybox AS b\n"), "{text}");
    assert!(!text.contains('['), "{text}");
    assert!(!text.contains("never-built"), "{text}");

    if docker_cli_available() {
        let out = d.docker(&["build", "--no-cache", "-t", "par:2", ctx.to_str().unwrap()]);
        assert_success(&out, "docker build");
        let text = stdout(&out);
        check_tagged(&text);
        assert!(text.contains("Successfully tagged par:2\n"), "{text}");
        let t = times(&d, "par:2");
        assert!(
            t[0] < t[3] && t[2] < t[1],
            "a {}..{}, b {}..{}",
            t[0],
            t[1],
            t[2],
            t[3]
        );
    }
}

#[test]
fn a_failing_stage_stops_the_others_and_leaves_nothing() {
    let d = daemon();
    let ctx = context(
        &d,
        "fail",
        "FROM busybox AS a\nRUN sleep 1; exit 3\nFROM busybox AS b\nRUN sleep 120 && touch /done\nFROM busybox\nCOPY --from=a /etc/passwd /a\nCOPY --from=b /etc/passwd /b\n",
    );
    let out = d.berth(&["build", "--force-rm", ctx.to_str().unwrap()]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("returned a non-zero code: 3"),
        "{}",
        stderr(&out)
    );
    // b's RUN was stopped: no container is left, no image of it was committed.
    assert!(
        wait_until(std::time::Duration::from_secs(15), || {
            d.berth_ok(&["ps", "-a", "-q"]).trim().is_empty()
        }),
        "{}",
        d.berth_ok(&["ps", "-a"])
    );
    assert_eq!(
        d.berth_ok(&["images", "-a", "-q"]).lines().count(),
        1,
        "only busybox: {}",
        d.berth_ok(&["images", "-a"])
    );
    let tmp = d.root.join("builds/tmp");
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        fs::read_dir(&tmp).map(|r| r.count() == 0).unwrap_or(true)
    }));
    assert!(mounts_under(&d.dir).is_empty());
}

#[test]
fn a_mount_from_a_stage_builds_that_stage_first() {
    let d = daemon();
    let ctx = context(
        &d,
        "mountfrom",
        "FROM busybox AS src\nRUN echo from-src > /x\nFROM busybox AS unused\nRUN echo never-built\nFROM busybox\nRUN --mount=type=bind,from=src,target=/m cat /m/x > /y\nCMD cat /y\n",
    );
    let out = d.berth(&["build", "-t", "mf:1", ctx.to_str().unwrap()]);
    assert_success(&out, "berth build");
    let text = stdout(&out);
    assert!(!text.contains("never-built"), "{text}");
    assert!(
        !text.contains('['),
        "a chain is Docker's classic stream: {text}"
    );
    assert_eq!(d.berth_ok(&["run", "--rm", "mf:1"]), "from-src\n");
}
