//! The stages of a Dockerfile as a graph: a stage depends on the earlier stages its
//! `FROM <stage>`, `COPY --from=`/`ADD --from=` and `RUN --mount=…,from=` name. Only the
//! stages the target needs are built, and stages that do not depend on each other may
//! run at the same time.
//!
//! A reference is resolved as the builder resolves it (a number is a stage index, a
//! name the latest earlier stage of that name, anything else an image). A `--from` word
//! the global ARGs cannot expand (it uses a stage's own ENV or ARG) is taken to depend
//! on every earlier stage, so the graph never misses an edge.

use std::collections::BTreeSet;

use crate::dockerfile::{Kind, Stage};
use crate::shell::process_word;

/// One build's stage graph.
#[derive(Debug, Clone)]
pub struct StageGraph {
    /// For each stage, the earlier stages it needs.
    pub deps: Vec<BTreeSet<usize>>,
}

/// What a `--from` word refers to.
enum Ref {
    Stage(usize),
    Image,
    Unknown,
}

fn resolve(word: &str, stages: &[Stage], before: usize, env: &[String], escape: char) -> Ref {
    if word.contains('$') && !env_defines_all(word, env) {
        return Ref::Unknown;
    }
    let Ok(w) = process_word(word, env, escape) else {
        return Ref::Unknown;
    };
    if let Ok(i) = w.parse::<usize>() {
        return if i < before {
            Ref::Stage(i)
        } else {
            Ref::Image
        };
    }
    let lower = w.to_lowercase();
    match stages[..before]
        .iter()
        .rposition(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        Some(i) => Ref::Stage(i),
        None => Ref::Image,
    }
}

/// True when every `$NAME` / `${NAME…}` in `word` is one of the global ARGs.
fn env_defines_all(word: &str, env: &[String]) -> bool {
    let re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").expect("static regex");
    let all = re.captures_iter(word).all(|c| {
        let name = &c[1];
        env.iter()
            .any(|e| e.split_once('=').is_some_and(|(k, _)| k == name))
    });
    all
}

/// The `from=` values of the `--mount` flags of a RUN's original text.
pub fn mount_froms(original: &str) -> Vec<String> {
    let mut out = Vec::new();
    for tok in original.split_whitespace() {
        let Some(spec) = tok.strip_prefix("--mount=") else {
            continue;
        };
        for kv in spec.split(',') {
            if let Some(v) = kv.strip_prefix("from=") {
                out.push(v.trim_matches('"').to_string());
            }
        }
    }
    out
}

impl StageGraph {
    /// The graph of `stages`; `env` is the global ARGs (`k=v`).
    pub fn new(stages: &[Stage], env: &[String], escape: char) -> Self {
        let mut deps = Vec::with_capacity(stages.len());
        for (i, stage) in stages.iter().enumerate() {
            let mut words = Vec::new();
            if let Kind::From { image, .. } = &stage.from.kind {
                words.push(image.clone());
            }
            for ins in &stage.instructions {
                match &ins.kind {
                    Kind::Copy(spec) | Kind::Add(spec) => words.extend(spec.from.clone()),
                    Kind::Run(_) => words.extend(mount_froms(&ins.original)),
                    _ => {}
                }
            }
            let mut d = BTreeSet::new();
            for w in &words {
                match resolve(w, stages, i, env, escape) {
                    Ref::Stage(j) => {
                        d.insert(j);
                    }
                    Ref::Image => {}
                    Ref::Unknown => d.extend(0..i),
                }
            }
            deps.push(d);
        }
        StageGraph { deps }
    }

    /// The stages `target` needs, itself included.
    pub fn needed(&self, target: usize) -> Vec<bool> {
        let mut needed = vec![false; self.deps.len()];
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if i < needed.len() && !needed[i] {
                needed[i] = true;
                todo.extend(self.deps[i].iter().copied());
            }
        }
        needed
    }

    /// True when `a` needs `b`, directly or through other stages.
    fn reaches(&self, a: usize, b: usize) -> bool {
        let mut seen = vec![false; self.deps.len()];
        let mut todo = vec![a];
        while let Some(i) = todo.pop() {
            if i == b {
                return true;
            }
            if !seen[i] {
                seen[i] = true;
                todo.extend(self.deps[i].iter().copied());
            }
        }
        false
    }

    /// True when two of the needed stages can run at the same time.
    pub fn has_parallel(&self, needed: &[bool]) -> bool {
        let idx: Vec<usize> = (0..needed.len()).filter(|i| needed[*i]).collect();
        idx.iter().enumerate().any(|(k, &a)| {
            idx[k + 1..]
                .iter()
                .any(|&b| !self.reaches(a, b) && !self.reaches(b, a))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    fn graph(text: &str, env: &[&str]) -> (StageGraph, usize) {
        let df = parse(text).unwrap();
        let env: Vec<String> = env.iter().map(|s| s.to_string()).collect();
        let n = df.stages.len();
        (StageGraph::new(&df.stages, &env, '\\'), n)
    }

    #[test]
    fn edges_from_from_copy_and_mounts() {
        let (g, _) = graph(
            "FROM busybox AS a\nRUN true\nFROM busybox AS b\nRUN true\nFROM busybox AS unused\nFROM a AS c\nCOPY --from=b /x /x\nCOPY --from=1 /y /y\nCOPY --from=2 /z /z\nFROM busybox\nCOPY --from=c /x /x\n",
            &[],
        );
        assert_eq!(g.deps[3], BTreeSet::from([0, 1, 2]));
        assert_eq!(g.deps[4], BTreeSet::from([3]));
        let needed = g.needed(4);
        assert_eq!(needed, vec![true, true, true, true, true]);
        assert!(g.has_parallel(&needed));
        // Only what `a` needs.
        assert_eq!(g.needed(0), vec![true, false, false, false, false]);
        assert!(!g.has_parallel(&g.needed(0)));
    }

    #[test]
    fn unneeded_stages_and_a_chain() {
        let (g, n) = graph(
            "FROM busybox AS a\nFROM busybox AS skipped\nFROM a AS b\nFROM b\n",
            &[],
        );
        let needed = g.needed(n - 1);
        assert_eq!(needed, vec![true, false, true, true]);
        assert!(!g.has_parallel(&needed), "a chain runs one stage at a time");
    }

    #[test]
    fn args_and_unknown_words() {
        let (g, _) = graph(
            "FROM busybox AS a\nFROM busybox AS b\nFROM ${BASE}\nCOPY --from=$SRC /x /x\n",
            &["BASE=a"],
        );
        // FROM ${BASE} is stage a; --from=$SRC is not known before the stage runs.
        assert_eq!(g.deps[2], BTreeSet::from([0, 1]));
        let (g, _) = graph(
            "FROM busybox AS a\nFROM other/image\nCOPY --from=x/y:1 /a /a\n",
            &[],
        );
        assert!(g.deps[1].is_empty(), "images are no stages");
        let (g, _) = graph(
            "FROM busybox AS a\nFROM a AS b\nFROM b\nCOPY --from=0 /x /x\n",
            &[],
        );
        assert_eq!(g.deps[2], BTreeSet::from([0, 1]));
        assert_eq!(
            mount_froms("RUN --mount=type=cache,target=/c,from=x --mount=from=\"y\" true"),
            vec!["x", "y"]
        );
    }
}
