//! Build arguments with moby's `BuildArgs` rules: `--build-arg` values, ARG defaults,
//! the global (meta) ARGs before the first FROM usable in FROM and redeclarable inside a
//! stage, a scope per stage, the predefined proxy ARGs usable without a declaration but
//! kept out of history unless declared, and the warning for build-args never consumed.

use std::collections::{BTreeMap, BTreeSet};

/// Docker's predefined ARGs (moby `builtinAllowedBuildArgs`).
pub const BUILTIN: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    // BuildKit's, for reproducible images (`crate::repro`).
    "SOURCE_DATE_EPOCH",
];

#[derive(Debug, Clone, Default)]
pub struct BuildArgs {
    /// `--build-arg` values (None: `--build-arg NAME` with no value and none in the env).
    given: BTreeMap<String, Option<String>>,
    /// Global ARGs: name → value (given or default).
    meta: BTreeMap<String, Option<String>>,
    /// ARGs declared in the current stage, in order, with their resolved value.
    allowed: Vec<(String, Option<String>)>,
    /// Names consumed anywhere in the build (for the warning).
    referenced: BTreeSet<String>,
}

impl BuildArgs {
    pub fn new(given: BTreeMap<String, Option<String>>) -> Self {
        BuildArgs {
            given,
            ..Default::default()
        }
    }

    /// A global ARG (before the first FROM); `default` already expanded.
    pub fn add_meta(&mut self, name: &str, default: Option<String>) {
        let value = match self.given.get(name) {
            Some(Some(v)) => Some(v.clone()),
            _ => default,
        };
        self.referenced.insert(name.to_string());
        self.meta.insert(name.to_string(), value);
    }

    /// The global ARGs with a value, as `k=v` (FROM's expansion environment).
    pub fn meta_env(&self) -> Vec<String> {
        self.meta
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect()
    }

    /// Takes the names another stage's copy consumed (stages run on copies).
    pub fn absorb_referenced(&mut self, other: &BuildArgs) {
        self.referenced.extend(other.referenced.iter().cloned());
    }

    /// A new stage starts: its declared ARGs are forgotten.
    pub fn reset_stage(&mut self) {
        self.allowed.clear();
    }

    /// `ARG name[=default]` inside a stage; `default` already expanded. Without a
    /// default, a global ARG of the same name gives its value.
    pub fn declare(&mut self, name: &str, default: Option<String>) {
        let value = match self.given.get(name) {
            Some(Some(v)) => Some(v.clone()),
            _ => default.or_else(|| self.meta.get(name).cloned().flatten()),
        };
        self.referenced.insert(name.to_string());
        self.allowed.retain(|(n, _)| n != name);
        self.allowed.push((name.to_string(), value));
    }

    fn is_declared(&self, name: &str) -> bool {
        self.allowed.iter().any(|(n, _)| n == name)
    }

    /// The ARGs visible to a step as `k=v`, minus names `env` (the config's Env) sets:
    /// the stage's declared ARGs with a value, then the predefined proxy ARGs given.
    pub fn step_env(&self, env: &[String]) -> Vec<String> {
        let set_by_env = |k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
        let mut out: Vec<String> = self
            .allowed
            .iter()
            .filter(|(k, _)| !set_by_env(k))
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
            .collect();
        for b in BUILTIN {
            if self.is_declared(b) || set_by_env(b) {
                continue;
            }
            if let Some(Some(v)) = self.given.get(*b) {
                out.push(format!("{b}={v}"));
            }
        }
        out
    }

    /// What RUN's history and cache key show before the command (moby
    /// `prependEnvOnCmd`): `|N k=v …`, sorted, predefined ARGs only when declared.
    /// Empty when no ARG is in effect.
    pub fn history_prefix(&self, env: &[String]) -> Vec<String> {
        let step = self.step_env(env);
        if step.is_empty() {
            return Vec::new();
        }
        let mut shown: Vec<String> = step
            .into_iter()
            .filter(|kv| {
                let k = kv.split('=').next().unwrap_or_default();
                !BUILTIN.contains(&k) || self.is_declared(k)
            })
            .collect();
        shown.sort();
        let mut out = vec![format!("|{}", shown.len())];
        out.extend(shown);
        out
    }

    /// `--build-arg`s never declared (predefined ones excepted), sorted.
    pub fn unused(&self) -> Vec<String> {
        self.given
            .keys()
            .filter(|k| !self.referenced.contains(*k) && !BUILTIN.contains(&k.as_str()))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn given(kv: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<String>> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect()
    }

    #[test]
    fn scope_defaults_meta_and_env_override() {
        let mut a = BuildArgs::new(given(&[("B", Some("given")), ("UNUSED", Some("x"))]));
        a.add_meta("V", Some("meta".into()));
        assert_eq!(a.meta_env(), vec!["V=meta"]);
        a.declare("A", Some("dflt".into()));
        a.declare("B", Some("dflt".into()));
        a.declare("V", None);
        assert_eq!(a.step_env(&[]), vec!["A=dflt", "B=given", "V=meta"]);
        assert_eq!(a.step_env(&["A=env".into()]), vec!["B=given", "V=meta"]);
        a.reset_stage();
        assert!(a.step_env(&[]).is_empty(), "a new stage forgets its ARGs");
        assert_eq!(a.unused(), vec!["UNUSED"]);
    }

    #[test]
    fn proxy_args_are_usable_but_not_in_history_unless_declared() {
        let mut a = BuildArgs::new(given(&[("HTTP_PROXY", Some("http://p")), ("X", Some("1"))]));
        a.declare("X", None);
        assert_eq!(a.step_env(&[]), vec!["X=1", "HTTP_PROXY=http://p"]);
        assert_eq!(a.history_prefix(&[]), vec!["|1", "X=1"]);
        a.declare("HTTP_PROXY", None);
        assert_eq!(
            a.history_prefix(&[]),
            vec!["|2", "HTTP_PROXY=http://p", "X=1"]
        );
        assert!(a.unused().is_empty());
        let none = BuildArgs::new(BTreeMap::new());
        assert!(none.history_prefix(&[]).is_empty());
    }
}
