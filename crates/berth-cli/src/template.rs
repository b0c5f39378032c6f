//! Go templates as the Docker CLI runs them: gotmpl plus Docker's functions (`json`,
//! `upper`, `lower`, `join`, `split`, `title`, `truncate`, `pad`), the `table` prefix with
//! its header row, literal `\t`/`\n`, and Docker's tabwriter settings.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use gotmpl::{Template, TemplateError, Value};
use serde_json::Value as Json;

/// JSON text of the maps and lists built from daemon JSON, keyed by their `Arc` address, so
/// that `{{json .Config}}` prints fields in the daemon's order (gotmpl maps are sorted).
type JsonTable = Arc<Mutex<HashMap<usize, String>>>;

/// A parsed `--format` template.
pub struct Format {
    table: bool,
    rows: bool,
    body: Template,
    header: Option<Template>,
    json: JsonTable,
    /// Whether the template calls `json` (only then is each value's JSON text kept).
    uses_json: bool,
    /// The template as text and plain `{{.Field}}` actions, when it is only that (the
    /// default `ps`/`images` tables): rendered by substitution, without gotmpl.
    simple: Option<Vec<Segment>>,
}

/// A piece of a template with nothing but text and `{{.Field}}` actions.
#[derive(Debug, PartialEq)]
enum Segment {
    Text(String),
    Field(String),
}

/// Splits `src` into [`Segment`]s, or `None` when any action is more than `.Field`.
fn simple_segments(src: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            out.push(Segment::Text(rest[..open].to_string()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}")?;
        let action = after[..close].trim_matches(' ');
        let field = action.strip_prefix('.')?;
        let mut chars = field.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        out.push(Segment::Field(field.to_string()));
        rest = &after[close + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        out.push(Segment::Text(rest.to_string()));
    }
    Some(out)
}

/// Renders simple segments over one JSON object as Go would print its fields; `None`
/// whenever Go's output could differ (missing key, null, float, list, map): gotmpl then
/// renders it, with its exact text or error.
fn render_simple(segments: &[Segment], data: &Json) -> Option<String> {
    let obj = data.as_object()?;
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Text(t) => out.push_str(t),
            Segment::Field(f) => match obj.get(f)? {
                Json::String(s) => out.push_str(s),
                Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                Json::Number(n) if n.is_i64() || n.is_u64() => out.push_str(&n.to_string()),
                _ => return None,
            },
        }
    }
    Some(out)
}

/// What a template failed at, in Docker's words.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("template parsing error: {0}")]
    Parse(String),
    #[error("template parsing error: {0}")]
    Exec(String),
}

impl FormatError {
    /// The wording `ps` uses (`failed to parse template: …`, `failed to execute template: …`).
    pub fn ps_text(&self) -> String {
        match self {
            FormatError::Parse(m) => format!("failed to parse template: {m}"),
            FormatError::Exec(m) => format!("failed to execute template: {m}"),
        }
    }
}

/// Go prints parse errors as `template: NAME:LINE: msg`; gotmpl as `template: LINE:COL: msg`.
fn go_error_text(e: &TemplateError) -> String {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix("template: ") {
        let mut parts = rest.splitn(3, ':');
        if let (Some(line), Some(col), Some(msg)) = (parts.next(), parts.next(), parts.next()) {
            if line.chars().all(|c| c.is_ascii_digit()) && col.chars().all(|c| c.is_ascii_digit()) {
                return format!("template: :{line}:{msg}");
            }
        }
    }
    text
}

/// Docker's rows have a `Label NAME` method; gotmpl maps have no methods, so
/// `.Label "x"` becomes `(label ._labels "x")` over the hidden `_labels` map of the row.
fn rewrite_label_calls(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(i) = rest.find(".Label ") {
        let before_ok =
            i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.');
        let after = &rest[i + ".Label ".len()..];
        let arg = after.trim_start();
        let quoted = arg.starts_with('"') && arg[1..].find('"').is_some();
        if !before_ok || !quoted {
            out.push_str(&rest[..i + ".Label ".len()]);
            rest = after;
            continue;
        }
        let end = 1 + arg[1..].find('"').unwrap_or(0) + 1;
        out.push_str(&rest[..i]);
        out.push_str(&format!("(label ._labels {})", &arg[..end]));
        rest = &arg[end..];
    }
    out.push_str(rest);
    out
}

/// JSON as Go's `json.Marshal` writes a map: keys sorted, `<`, `>` and `&` escaped.
pub fn go_marshal_sorted(v: &Json) -> String {
    fn sort(v: &Json) -> Json {
        match v {
            Json::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                Json::Object(keys.into_iter().map(|k| (k.clone(), sort(&o[k]))).collect())
            }
            Json::Array(a) => Json::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    // Keys starting with `_` are Berth's hidden helpers, not Docker fields.
    let visible = match v {
        Json::Object(o) => Json::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with('_'))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    sort(&visible)
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

fn arg_str(args: &[Value], i: usize) -> String {
    args.get(i).map(|v| v.to_string()).unwrap_or_default()
}

fn arg_int(args: &[Value], i: usize) -> i64 {
    args.get(i)
        .and_then(|v| {
            v.as_int()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(0)
}

/// Go's `strings.Title`: upper-cases the first letter of every word.
pub fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_letter = false;
    for c in s.chars() {
        let is_word = c.is_alphanumeric() || c == '_' || c == '\'';
        if is_word && !prev_letter {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_letter = is_word;
    }
    out
}

fn to_json_text(v: &Value, table: &HashMap<usize, String>) -> String {
    match v {
        Value::Map(m) => {
            if let Some(s) = table.get(&(Arc::as_ptr(m) as *const u8 as usize)) {
                return s.clone();
            }
            let fields: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", Json::String(k.to_string()), to_json_text(v, table)))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::List(l) => {
            if let Some(s) = table.get(&(Arc::as_ptr(l) as *const u8 as usize)) {
                return s.clone();
            }
            let items: Vec<String> = l.iter().map(|v| to_json_text(v, table)).collect();
            format!("[{}]", items.join(","))
        }
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Uint(n) => n.to_string(),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(|n| n.to_string())
            .unwrap_or("null".into()),
        Value::String(s) => Json::String(s.to_string()).to_string(),
        _ => "null".into(),
    }
}

/// Converts daemon JSON into a template value, remembering each container's JSON text
/// when `keep_json` (the template calls `json`).
fn to_value(j: &Json, table: &mut HashMap<usize, String>, keep_json: bool) -> Value {
    match j {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::Uint(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Value::String(s.as_str().into()),
        Json::Array(a) => {
            let list: Arc<[Value]> = a.iter().map(|v| to_value(v, table, keep_json)).collect();
            if keep_json {
                table.insert(Arc::as_ptr(&list) as *const u8 as usize, j.to_string());
            }
            Value::List(list)
        }
        Json::Object(o) => {
            let map: std::collections::BTreeMap<Arc<str>, Value> = o
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), to_value(v, table, keep_json)))
                .collect();
            let map = Arc::new(map);
            if keep_json {
                table.insert(Arc::as_ptr(&map) as *const u8 as usize, j.to_string());
            }
            Value::Map(map)
        }
    }
}

fn with_docker_funcs(t: Template, json: JsonTable) -> Template {
    t.func("json", move |args: &[Value]| {
        let table = json
            .lock()
            .map_err(|_| TemplateError::Exec("json table poisoned".into()))?;
        Ok(Value::String(
            to_json_text(args.first().unwrap_or(&Value::Nil), &table).into(),
        ))
    })
    .func("upper", |a: &[Value]| {
        Ok(Value::String(arg_str(a, 0).to_uppercase().into()))
    })
    .func("lower", |a: &[Value]| {
        Ok(Value::String(arg_str(a, 0).to_lowercase().into()))
    })
    .func("title", title_fn)
    .func("split", |a: &[Value]| {
        let s = arg_str(a, 0);
        let sep = arg_str(a, 1);
        let parts: Arc<[Value]> = if sep.is_empty() {
            s.chars()
                .map(|c| Value::String(c.to_string().into()))
                .collect()
        } else {
            s.split(sep.as_str())
                .map(|p| Value::String(p.into()))
                .collect()
        };
        Ok(Value::List(parts))
    })
    .func("join", |a: &[Value]| {
        let sep = arg_str(a, 1);
        let joined = match a.first() {
            Some(Value::List(l)) => l
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(&sep),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        Ok(Value::String(joined.into()))
    })
    .func("truncate", |a: &[Value]| {
        let s = arg_str(a, 0);
        let n = arg_int(a, 1).max(0) as usize;
        Ok(Value::String(s.chars().take(n).collect::<String>().into()))
    })
    .func("pad", pad_fn)
    .func("label", |a: &[Value]| {
        let key = arg_str(a, 1);
        Ok(a.first()
            .and_then(|m| m.field(&key))
            .cloned()
            .unwrap_or(Value::String("".into())))
    })
}

/// `title`: Go's `strings.Title`.
fn title_fn(a: &[Value]) -> gotmpl::Result<Value> {
    Ok(Value::String(title_case(&arg_str(a, 0)).into()))
}

/// `pad S BEFORE AFTER`: spaces around a string.
fn pad_fn(a: &[Value]) -> gotmpl::Result<Value> {
    let s = arg_str(a, 0);
    let (before, after) = (arg_int(a, 1).max(0) as usize, arg_int(a, 2).max(0) as usize);
    Ok(Value::String(
        format!("{}{s}{}", " ".repeat(before), " ".repeat(after)).into(),
    ))
}

/// Docker's header functions: `json`, `upper`, `lower`, `split`, `join` and `truncate`
/// hand back their first argument; `title` and `pad` apply to the header too.
fn with_header_funcs(t: Template) -> Template {
    let ident = |a: &[Value]| Ok(a.first().cloned().unwrap_or(Value::Nil));
    ["json", "upper", "lower", "split", "join", "truncate"]
        .iter()
        .fold(t.func("title", title_fn).func("pad", pad_fn), |t, name| {
            t.func(name, ident)
        })
        // Docker titles a label column with the key's last dotted part, `-`/`_` as spaces.
        .func("label", |a: &[Value]| {
            let key = arg_str(a, 1);
            let last = key
                .rsplit('.')
                .next()
                .unwrap_or("")
                .replace(['-', '_'], " ");
            Ok(Value::String(last.into()))
        })
}

impl Format {
    /// Parses a Docker `--format` string (`table …` or a plain template) to run over
    /// daemon JSON (`inspect -f`): a missing key prints `<no value>`.
    pub fn parse(format: &str) -> Result<Self, FormatError> {
        Self::parse_with(format, false)
    }

    /// Parses a format for formatter rows (`ps`, `images`, `history`): like Docker's
    /// structs, a field that does not exist is an error, and `{{json .}}` sorts the keys.
    pub fn parse_rows(format: &str) -> Result<Self, FormatError> {
        // Docker CLI 28: `--format json` is `{{json .}}`, one object per line.
        if format.trim() == "json" {
            return Self::parse_with("{{json .}}", true);
        }
        Self::parse_with(format, true)
    }

    fn parse_with(format: &str, rows: bool) -> Result<Self, FormatError> {
        let table = format.starts_with("table");
        let src = if table {
            &format["table".len()..]
        } else {
            format
        };
        let src = src
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        let src = if rows { rewrite_label_calls(&src) } else { src };
        let json: JsonTable = Arc::default();
        let missing = if rows {
            gotmpl::MissingKey::Error
        } else {
            gotmpl::MissingKey::Invalid
        };
        let body = with_docker_funcs(Template::new("").missing_key(missing), json.clone())
            .parse(&src)
            .map_err(|e| FormatError::Parse(go_error_text(&e)))?;
        let header = if table {
            Some(
                with_header_funcs(Template::new(""))
                    .parse(&src)
                    .map_err(|e| FormatError::Parse(go_error_text(&e)))?,
            )
        } else {
            None
        };
        let uses_json = src.contains("json");
        let simple = simple_segments(&src);
        Ok(Format {
            table,
            rows,
            body,
            header,
            json,
            uses_json,
            simple,
        })
    }

    /// Whether rendering can use row field `name`: false only for a plain `{{.Field}}`
    /// template that does not name it (callers skip computing such fields).
    pub fn wants(&self, name: &str) -> bool {
        match &self.simple {
            Some(segments) => segments
                .iter()
                .any(|s| matches!(s, Segment::Field(f) if f == name)),
            None => true,
        }
    }

    /// Whether the format asked for a table (header row, aligned columns).
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// Executes the template over one JSON value.
    pub fn execute(&self, data: &Json) -> Result<String, FormatError> {
        self.execute_inner(data, None)
    }

    /// Executes the template over `data` (a Go struct's fields, `{{.Actor.ID}}`), where
    /// `{{json .}}` prints `self_json`, the struct's own JSON (whose keys differ).
    pub fn execute_with_json(&self, data: &Json, self_json: &str) -> Result<String, FormatError> {
        self.execute_inner(data, Some(self_json))
    }

    fn execute_inner(&self, data: &Json, self_json: Option<&str>) -> Result<String, FormatError> {
        if let Some(out) = self
            .simple
            .as_deref()
            .and_then(|segs| render_simple(segs, data))
        {
            return Ok(out);
        }
        let mut table = HashMap::new();
        let value = to_value(data, &mut table, self.uses_json);
        if let (true, true, Value::Map(m)) = (self.uses_json, self.rows, &value) {
            table.insert(
                Arc::as_ptr(m) as *const u8 as usize,
                go_marshal_sorted(data),
            );
        }
        if let (true, Some(text), Value::Map(m)) = (self.uses_json, self_json, &value) {
            table.insert(Arc::as_ptr(m) as *const u8 as usize, text.to_string());
        }
        if let Ok(mut t) = self.json.lock() {
            *t = table;
        }
        let out = self
            .body
            .execute_to_string(&value)
            .map_err(|e| FormatError::Exec(go_error_text(&e)));
        if let Ok(mut t) = self.json.lock() {
            t.clear();
        }
        out
    }

    /// Renders rows as Docker's formatter does: with `table`, the header (from `headers`,
    /// field name → column title) and tabwriter alignment; otherwise one line per row.
    pub fn render(&self, rows: &[Json], headers: &Json) -> Result<String, FormatError> {
        let mut body = String::new();
        for row in rows {
            body.push_str(&self.execute(row)?);
            body.push('\n');
        }
        let Some(header) = &self.header else {
            return Ok(body);
        };
        let mut table = HashMap::new();
        let hv = to_value(headers, &mut table, false);
        let head = header.execute_to_string(&hv).unwrap_or_default();
        Ok(tabwrite(&format!("{head}\n{body}"), 10, 3))
    }
}

/// Aligns tab-separated cells like Go's `tabwriter.NewWriter(w, minwidth, 1, padding, ' ', 0)`.
pub fn tabwrite(text: &str, minwidth: usize, padding: usize) -> String {
    // Go's cell width is max(minwidth, text + padding); this crate's is max(minwidth, text) + padding.
    let mut tw = tabwriter::TabWriter::new(Vec::new())
        .minwidth(minwidth.saturating_sub(padding))
        .padding(padding);
    let _ = tw.write_all(text.as_bytes());
    let _ = tw.flush();
    tw.into_inner()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_prefix_renders_header_and_aligned_columns() {
        let f = Format::parse("table {{.ID}}\\t{{.Image}}\\t{{.Names}}").unwrap();
        let rows = vec![json!({"ID": "0123456789ab", "Image": "busybox", "Names": "web"})];
        let headers = json!({"ID": "CONTAINER ID", "Image": "IMAGE", "Names": "NAMES"});
        assert_eq!(
            f.render(&rows, &headers).unwrap(),
            "CONTAINER ID   IMAGE     NAMES\n0123456789ab   busybox   web\n"
        );
    }

    #[test]
    fn plain_format_has_no_header() {
        let f = Format::parse("{{.ID}}:{{upper .Names}}").unwrap();
        let rows = vec![
            json!({"ID": "a", "Names": "web"}),
            json!({"ID": "b", "Names": "db"}),
        ];
        assert_eq!(f.render(&rows, &json!({})).unwrap(), "a:WEB\nb:DB\n");
    }

    #[test]
    fn header_functions_pass_the_title_through() {
        let f = Format::parse("table {{upper .Names}}\\t{{json .ID}}").unwrap();
        let out = f
            .render(
                &[json!({"ID": "x", "Names": "n"})],
                &json!({"ID": "CONTAINER ID", "Names": "NAMES"}),
            )
            .unwrap();
        assert_eq!(out, "NAMES     CONTAINER ID\nN         \"x\"\n");
        let f = Format::parse("table {{title .S}}\\t{{pad .S 1 1}}|").unwrap();
        let out = f
            .render(&[json!({"S": "ab"})], &json!({"S": "STATE"}))
            .unwrap();
        assert_eq!(out, "STATE      STATE |\nAb         ab |\n");
    }

    #[test]
    fn json_keeps_daemon_field_order() {
        let f = Format::parse("{{json .Config}}").unwrap();
        let data =
            json!({"Config": {"Hostname": "abc", "Env": ["A=1"], "Cmd": null, "Attach": false}});
        assert_eq!(
            f.execute(&data).unwrap(),
            r#"{"Hostname":"abc","Env":["A=1"],"Cmd":null,"Attach":false}"#
        );
        let f =
            Format::parse("{{.State.Running}} {{.Config.Hostname}} {{json .Config.Env}}").unwrap();
        assert_eq!(f.execute(&json!({"State": {"Running": true}, "Config": {"Hostname": "h", "Env": ["B=2", "A=1"]}})).unwrap(), r#"true h ["B=2","A=1"]"#);
    }

    #[test]
    fn docker_string_functions() {
        let f = Format::parse(r#"{{join (split .S ",") "|"}} {{title .T}} {{truncate .S 3}} [{{pad .T 1 2}}] {{lower .U}}"#).unwrap();
        let out = f
            .execute(&json!({"S": "a,b,c", "T": "hello world", "U": "ABC"}))
            .unwrap();
        assert_eq!(out, "a|b|c Hello World a,b [ hello world  ] abc");
    }

    #[test]
    fn row_json_is_sorted_and_escaped_like_go() {
        let f = Format::parse_rows("{{json .}}").unwrap();
        let out = f
            .execute(&json!({"Ports": "0.0.0.0:80->80/tcp", "ID": "a", "Platform": null}))
            .unwrap();
        assert_eq!(
            out,
            r#"{"ID":"a","Platform":null,"Ports":"0.0.0.0:80-\u003e80/tcp"}"#
        );
        assert!(f.execute(&json!({})).is_ok());
        let strict = Format::parse_rows("{{.Foo}}").unwrap();
        assert!(strict.execute(&json!({"ID": "a"})).is_err());
        assert_eq!(
            Format::parse("{{.Foo}}")
                .unwrap()
                .execute(&json!({"ID": "a"}))
                .unwrap(),
            "<no value>"
        );
    }

    #[test]
    fn label_method_reads_the_rows_labels() {
        assert_eq!(
            rewrite_label_calls(r#"{{.Label "a.b"}}-{{.Labels}}"#),
            r#"{{(label ._labels "a.b")}}-{{.Labels}}"#
        );
        let f = Format::parse_rows(r#"{{.Label "a"}}|{{.Label "zz"}}"#).unwrap();
        assert_eq!(f.execute(&json!({"_labels": {"a": "1"}})).unwrap(), "1|");
        let f = Format::parse_rows("{{json .}}").unwrap();
        assert_eq!(
            f.execute(&json!({"_labels": {"a": "1"}, "ID": "x"}))
                .unwrap(),
            r#"{"ID":"x"}"#
        );
    }

    #[test]
    fn bad_template_is_a_parse_error() {
        let err = Format::parse("{{.ID").err().unwrap();
        assert_eq!(
            err.to_string(),
            "template parsing error: template: :1: unclosed action"
        );
    }

    #[test]
    fn simple_templates_are_split_and_others_are_not() {
        assert_eq!(
            simple_segments("{{.ID}}\t{{ .Names }}x"),
            Some(vec![
                Segment::Field("ID".into()),
                Segment::Text("\t".into()),
                Segment::Field("Names".into()),
                Segment::Text("x".into())
            ])
        );
        for src in [
            "{{json .}}",
            "{{.A.B}}",
            "{{- .A}}",
            "{{.A | upper}}",
            "{{if .A}}x{{end}}",
            "a}}b",
        ] {
            assert_eq!(simple_segments(src), None, "{src}");
        }
    }

    #[test]
    fn the_substitution_path_prints_what_gotmpl_prints() {
        let src = "{{.S}} {{.I}} {{.B}} {{.F}} {{.N}} {{.L}}";
        let f = Format::parse_rows(src).unwrap();
        let slow = |row: &Json| -> String {
            let mut table = HashMap::new();
            let value = to_value(row, &mut table, false);
            f.body
                .execute_to_string(&value)
                .unwrap_or_else(|e| format!("error: {e}"))
        };
        let rows = [
            serde_json::json!({"S": "a\tb", "I": -3, "B": true, "F": 1, "N": 0, "L": 9}),
            serde_json::json!({"S": "", "I": 18446744073709551615u64, "B": false, "F": 2, "N": 1, "L": 0}),
        ];
        for row in &rows {
            assert_eq!(f.execute(row).unwrap(), slow(row), "{row}");
            assert!(f
                .simple
                .as_deref()
                .and_then(|s| render_simple(s, row))
                .is_some());
        }
        // A float, a null, a list or a missing key goes to gotmpl.
        for row in [
            serde_json::json!({"S": 1.5, "I": 1, "B": true, "F": 1, "N": 1, "L": 1}),
            serde_json::json!({"S": null, "I": 1, "B": true, "F": 1, "N": 1, "L": 1}),
            serde_json::json!({"S": [1], "I": 1, "B": true, "F": 1, "N": 1, "L": 1}),
            serde_json::json!({"I": 1, "B": true, "F": 1, "N": 1, "L": 1}),
        ] {
            assert!(
                f.simple
                    .as_deref()
                    .and_then(|s| render_simple(s, &row))
                    .is_none(),
                "{row}"
            );
        }
    }
}
