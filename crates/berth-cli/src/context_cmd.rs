//! `berth context ls|use|create|update|inspect|rm|show`, over the Docker CLI's context
//! store, with docker/cli's words and output.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::{json, Value as Json};

use crate::config_file::ConfigFile;
use crate::context::{self, ContextMeta, DEFAULT_CONTEXT, DEFAULT_DESCRIPTION};
use crate::template::Format;
use crate::Failure;

#[derive(Subcommand, Debug)]
pub enum ContextCmd {
    /// Create a context
    Create(CreateArgs),
    /// Display detailed information on one or more contexts
    Inspect(InspectArgs),
    /// List contexts
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Remove one or more contexts
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Print the name of the current context
    Show,
    /// Update a context
    Update(CreateArgs),
    /// Set the current docker context
    Use(UseArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Description of the context
    #[arg(long, value_name = "string")]
    pub description: Option<String>,
    /// set the docker endpoint (host=unix://PATH[,skip-tls-verify=BOOL])
    #[arg(long, value_name = "stringToString")]
    pub docker: Vec<String>,
    /// create context from a named context
    #[arg(long, value_name = "string")]
    pub from: Option<String>,
    #[arg(value_name = "CONTEXT")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json' or a Go template
    #[arg(short, long, value_name = "string")]
    pub format: Option<String>,
    #[arg(value_name = "CONTEXT")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json' or 'TEMPLATE'
    #[arg(long, value_name = "string")]
    pub format: Option<String>,
    /// Only show context names
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a context in use
    #[arg(short, long)]
    pub force: bool,
    #[arg(value_name = "CONTEXT", required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UseArgs {
    #[arg(value_name = "CONTEXT")]
    pub name: String,
}

/// What the context commands need from the global flags.
pub struct Globals<'a> {
    pub host_flag: Option<&'a str>,
    pub context_flag: Option<&'a str>,
    pub config_dir: PathBuf,
}

const LS_TABLE: &str =
    "table {{.Name}}{{if .Current}} *{{end}}\t{{.Description}}\t{{.DockerEndpoint}}\t{{.Error}}";

fn msg(e: impl std::fmt::Display) -> Failure {
    Failure::Msg(e.to_string())
}

fn load_cfg(dir: &Path) -> ConfigFile {
    let (cfg, err) = ConfigFile::load(dir);
    if let Some(e) = err {
        eprintln!("WARNING: Error {e}");
    }
    cfg
}

/// Runs one context subcommand; none of them talks to the daemon.
pub fn dispatch(g: &Globals, cmd: &ContextCmd) -> Result<i32, Failure> {
    match cmd {
        ContextCmd::Ls(a) => ls(g, a),
        ContextCmd::Show => {
            let cfg = load_cfg(&g.config_dir);
            outln!(
                "{}",
                context::current_name(g.host_flag, g.context_flag, &cfg)
            );
            Ok(0)
        }
        ContextCmd::Use(a) => use_context(g, &a.name),
        ContextCmd::Create(a) => create(g, a, false),
        ContextCmd::Update(a) => create(g, a, true),
        ContextCmd::Inspect(a) => inspect(g, a),
        ContextCmd::Rm(a) => rm(g, a),
    }
}

fn default_meta(g: &Globals) -> ContextMeta {
    ContextMeta {
        name: DEFAULT_CONTEXT.into(),
        description: DEFAULT_DESCRIPTION.into(),
        host: context::default_host(g.host_flag),
        skip_tls_verify: false,
    }
}

fn all(g: &Globals) -> Vec<ContextMeta> {
    let mut v = vec![default_meta(g)];
    v.extend(
        context::list(&g.config_dir)
            .into_iter()
            .filter(|m| m.name != DEFAULT_CONTEXT),
    );
    // docker/cli lists every context by name, the default one included.
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn ls(g: &Globals, a: &LsArgs) -> Result<i32, Failure> {
    let cfg = load_cfg(&g.config_dir);
    let current = context::current_name(g.host_flag, g.context_flag, &cfg);
    let format = match (a.quiet, a.format.as_deref()) {
        (true, _) => "{{.Name}}",
        (false, None | Some("table") | Some("")) => LS_TABLE,
        (false, Some("json")) => "{{json .}}",
        (false, Some(f)) => f,
    };
    let tmpl = Format::parse_rows(format).map_err(msg)?;
    let rows: Vec<Json> = all(g)
        .into_iter()
        .map(|m| {
            json!({
                "Name": m.name, "Description": m.description, "DockerEndpoint": m.host,
                "Current": m.name == current, "Error": "",
            })
        })
        .collect();
    let headers = json!({"Name": "NAME", "Description": "DESCRIPTION",
        "DockerEndpoint": "DOCKER ENDPOINT", "Current": "", "Error": "ERROR"});
    out!("{}", tmpl.render(&rows, &headers).map_err(msg)?);
    Ok(0)
}

fn exists(g: &Globals, name: &str) -> bool {
    name == DEFAULT_CONTEXT
        || context::meta_dir(&g.config_dir, name)
            .join("meta.json")
            .exists()
}

fn use_context(g: &Globals, name: &str) -> Result<i32, Failure> {
    if !exists(g, name) {
        return Err(msg(format!("context \"{name}\" does not exist")));
    }
    let mut cfg = load_cfg(&g.config_dir);
    let value = (name != DEFAULT_CONTEXT).then_some(name);
    cfg.set_string_field("currentContext", value);
    cfg.save().map_err(msg)?;
    outln!("{name}");
    eprintln!("Current context is now \"{name}\"");
    if context::env_host().is_some() {
        if name == DEFAULT_CONTEXT {
            eprintln!("Warning: DOCKER_HOST environment variable overrides the active context. To use a context, either set the global --context flag, or unset DOCKER_HOST environment variable.");
        } else {
            eprintln!("Warning: DOCKER_HOST environment variable overrides the active context. To use \"{name}\", either set the global --context flag, or unset DOCKER_HOST environment variable.");
        }
    }
    Ok(0)
}

/// docker/cli's rule for context names.
fn validate_name(name: &str) -> Result<(), Failure> {
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_rest = name.len() >= 2
        && name
            .chars()
            .skip(1)
            .all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if !(ok_first && ok_rest) {
        return Err(msg(format!(
            "context name \"{name}\" is invalid, names are validated against regexp \"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$\""
        )));
    }
    if name == DEFAULT_CONTEXT {
        return Err(msg(format!("\"{name}\" is a reserved context name")));
    }
    Ok(())
}

/// Applies `--docker host=…,skip-tls-verify=…` (TLS files are refused: Berth speaks to
/// unix sockets only).
fn apply_docker_opts(m: &mut ContextMeta, opts: &[String], g: &Globals) -> Result<(), Failure> {
    for kv in opts.iter().flat_map(|o| o.split(',')) {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            msg(format!(
                "invalid argument \"{kv}\" for \"--docker\" flag: {kv} must be formatted as key=value"
            ))
        })?;
        match k {
            "host" => m.host = v.to_string(),
            "skip-tls-verify" => {
                m.skip_tls_verify = v
                    .parse()
                    .map_err(|_| msg(format!("unable to parse skip-tls-verify: {v}")))?
            }
            "from" => {
                let src = endpoint_of(g, v)?;
                m.host = src.host;
                m.skip_tls_verify = src.skip_tls_verify;
            }
            "ca" | "cert" | "key" => {
                return Err(msg(format!(
                    "unable to create docker endpoint config: {k}: TLS endpoints are not supported by Berth (only unix:// hosts)"
                )))
            }
            other => {
                return Err(msg(format!(
                    "unable to create docker endpoint config: unrecognized config key: {other}"
                )))
            }
        }
    }
    Ok(())
}

fn endpoint_of(g: &Globals, name: &str) -> Result<ContextMeta, Failure> {
    if name == DEFAULT_CONTEXT {
        return Ok(default_meta(g));
    }
    context::load(&g.config_dir, name).map_err(msg)
}

fn create(g: &Globals, a: &CreateArgs, update: bool) -> Result<i32, Failure> {
    let mut m = if update {
        if a.name == DEFAULT_CONTEXT {
            return Err(msg("context \"default\" cannot be updated"));
        }
        context::load(&g.config_dir, &a.name).map_err(msg)?
    } else {
        validate_name(&a.name)?;
        if exists(g, &a.name) {
            return Err(msg(format!("context \"{}\" already exists", a.name)));
        }
        // Without --docker or --from, the new context copies the current endpoint.
        let cfg = load_cfg(&g.config_dir);
        let from = a.from.clone().unwrap_or_else(|| {
            if a.docker.is_empty() {
                context::current_name(g.host_flag, g.context_flag, &cfg)
            } else {
                DEFAULT_CONTEXT.to_string()
            }
        });
        let mut src = endpoint_of(g, &from)?;
        src.name = a.name.clone();
        src.description = String::new();
        src
    };
    if let Some(d) = &a.description {
        m.description = d.clone();
    }
    apply_docker_opts(&mut m, &a.docker, g)?;
    context::save(&g.config_dir, &m).map_err(|e| msg(crate::io_error_text(&e)))?;
    outln!("{}", a.name);
    if update {
        eprintln!("Successfully updated context \"{}\"", a.name);
    } else {
        eprintln!("Successfully created context \"{}\"", a.name);
    }
    Ok(0)
}

/// Go's JSON encoder escapes `<`, `>` and `&` in strings.
fn go_escape(s: &str) -> String {
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn inspect_doc(g: &Globals, m: &ContextMeta) -> Json {
    let mut doc = context::meta_json(m);
    let storage = if m.name == DEFAULT_CONTEXT {
        doc["Metadata"] = json!({});
        json!({"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"})
    } else {
        json!({
            "MetadataPath": context::meta_dir(&g.config_dir, &m.name).display().to_string(),
            "TLSPath": context::tls_dir(&g.config_dir, &m.name).display().to_string(),
        })
    };
    if let Json::Object(o) = &mut doc {
        o.insert("TLSMaterial".into(), json!({}));
        o.insert("Storage".into(), storage);
    }
    doc
}

fn inspect(g: &Globals, a: &InspectArgs) -> Result<i32, Failure> {
    let names = if a.names.is_empty() {
        let cfg = load_cfg(&g.config_dir);
        vec![context::current_name(g.host_flag, g.context_flag, &cfg)]
    } else {
        a.names.clone()
    };
    let mut docs = Vec::new();
    for n in &names {
        let m = endpoint_of(g, n).map_err(|_| msg(format!("context \"{n}\" does not exist")))?;
        docs.push(inspect_doc(g, &m));
    }
    match a.format.as_deref() {
        None | Some("") => outln!(
            "{}",
            go_escape(&crate::system::indent_json(&Json::Array(docs)))
        ),
        Some("json") => outln!("{}", crate::system::inspect_json_line(&docs)),
        Some(f) => {
            let tmpl = Format::parse(f).map_err(msg)?;
            for d in &docs {
                outln!("{}", tmpl.execute(d).map_err(msg)?);
            }
        }
    }
    Ok(0)
}

fn rm(g: &Globals, a: &RmArgs) -> Result<i32, Failure> {
    let mut cfg = load_cfg(&g.config_dir);
    let current = cfg.string_field("currentContext");
    let mut errors = Vec::new();
    for n in &a.names {
        if n == DEFAULT_CONTEXT {
            errors.push(format!("context \"{n}\" cannot be removed"));
            continue;
        }
        if !exists(g, n) {
            errors.push(format!("context \"{n}\" does not exist"));
            continue;
        }
        let in_use = current.as_deref() == Some(n.as_str());
        if in_use && !a.force {
            errors.push(format!(
                "context \"{n}\" is in use, set -f flag to force remove"
            ));
            continue;
        }
        if in_use {
            cfg.set_string_field("currentContext", None);
            cfg.save().map_err(msg)?;
        }
        match context::remove(&g.config_dir, n) {
            Ok(()) => outln!("{n}"),
            Err(e) => errors.push(format!("context \"{n}\": {}", crate::io_error_text(&e))),
        }
    }
    if errors.is_empty() {
        Ok(0)
    } else {
        Err(msg(errors.join("\n")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        assert!(validate_name("foo").is_ok());
        assert!(validate_name("a.b-c_d+e").is_ok());
        assert!(validate_name("f").is_err());
        assert!(validate_name("-foo").is_err());
        assert!(validate_name("fo o").is_err());
        assert_eq!(
            validate_name("default").unwrap_err().to_string(),
            "\"default\" is a reserved context name"
        );
    }

    #[test]
    fn go_escapes_angle_brackets() {
        assert_eq!(go_escape("\"<IN MEMORY>\""), "\"\\u003cIN MEMORY\\u003e\"");
    }
}
