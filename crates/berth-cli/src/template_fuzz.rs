//! Property tests of `--format` templates: any text, and templates built from the pieces
//! Docker users write (actions, pipelines, `range`, `if`, `with`, Docker's functions,
//! `table`, `define`/`template`), parse and run over daemon-like JSON without panicking
//! or hanging.

use proptest::prelude::*;
use serde_json::json;

use crate::template::Format;

fn data() -> serde_json::Value {
    json!({
        "ID": "0123456789ab", "Names": ["/web"], "Image": "busybox", "Labels": {"a.b-c": "1", "x": ""},
        "State": {"Running": true, "Pid": 42, "ExitCode": 0}, "Size": 1234567, "Ports": [],
        "Mounts": [{"Source": "/v", "Destination": "/d"}], "Config": {"Env": ["A=1", "B=2"], "Cmd": null},
        "Nested": [[1, 2], [3]], "Empty": {}, "Float": 1.5, "Neg": -3, "Null": null,
    })
}

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{-".to_string()),
        Just("-}}".to_string()),
        Just("{{.ID}}".to_string()),
        Just("{{.State.Pid}}".to_string()),
        Just("{{.Missing.Deeper}}".to_string()),
        Just("{{json .}}".to_string()),
        Just("{{json .Config}}".to_string()),
        Just("{{.Labels}}".to_string()),
        Just("{{range .Names}}{{.}}{{end}}".to_string()),
        Just("{{range $i, $e := .Nested}}{{$i}}{{range $e}}{{.}}{{end}}{{end}}".to_string()),
        Just("{{range .}}".to_string()),
        Just("{{end}}".to_string()),
        Just("{{else}}".to_string()),
        Just("{{if .State.Running}}up{{else}}down{{end}}".to_string()),
        Just("{{with .Config}}{{.Env}}{{end}}".to_string()),
        Just("{{index .Labels \"a.b-c\"}}".to_string()),
        Just("{{index .Names 5}}".to_string()),
        Just("{{index .Nested 0 1}}".to_string()),
        Just("{{upper .Image}}".to_string()),
        Just("{{lower .Image | upper}}".to_string()),
        Just("{{join .Config.Env \",\"}}".to_string()),
        Just("{{split .Image \"b\"}}".to_string()),
        Just("{{title .Image}}".to_string()),
        Just("{{truncate .ID 3}}".to_string()),
        Just("{{truncate .ID -1}}".to_string()),
        Just("{{pad .ID 2 3}}".to_string()),
        Just("{{pad .ID -5 99999}}".to_string()),
        Just("{{printf \"%s %d %v %q\" .ID .Size .Labels .Null}}".to_string()),
        Just("{{printf \"%*d\" 100000 1}}".to_string()),
        Just("{{len .Names}}".to_string()),
        Just("{{len .Size}}".to_string()),
        Just("{{slice .ID 1 3}}".to_string()),
        Just("{{slice .ID 5 1}}".to_string()),
        Just("{{eq .Size 1}}".to_string()),
        Just("{{lt .Float .Neg}}".to_string()),
        Just("{{and .Null .ID}}".to_string()),
        Just("{{or .Null .ID}}".to_string()),
        Just("{{not .}}".to_string()),
        Just("{{$x := .ID}}{{$x}}".to_string()),
        Just("{{$x}}".to_string()),
        Just("{{label \"a.b-c\"}}".to_string()),
        Just("{{define \"t\"}}T{{end}}{{template \"t\" .}}".to_string()),
        Just("{{template \"nope\"}}".to_string()),
        Just("{{/* c */}}".to_string()),
        Just("table ".to_string()),
        Just("\\t".to_string()),
        Just("\\n".to_string()),
        Just("{{call .ID}}".to_string()),
        Just("{{.ID.Foo}}".to_string()),
        Just("{{.Float | printf \"%.2f\"}}".to_string()),
        Just("{{break}}".to_string()),
        Just("{{continue}}".to_string()),
        Just("{{range 5}}{{.}}{{end}}".to_string()),
        "[ -~]{0,6}",
    ]
}

fn run(format: &str) {
    for f in [Format::parse(format), Format::parse_rows(format)]
        .into_iter()
        .flatten()
    {
        {
            let _ = f.execute(&data());
            let _ = f.render(
                &[data(), json!({}), json!(null)],
                &json!({"ID": "CONTAINER ID"}),
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn templates_from_pieces_never_panic(pieces in proptest::collection::vec(piece(), 0..8)) {
        run(&pieces.concat());
    }

    #[test]
    fn any_text_never_panics(s in ".{0,64}") {
        run(&s);
        run(&format!("table {s}"));
        run(&format!("{{{{{s}}}}}"));
    }
}

#[test]
fn a_template_that_calls_itself_is_an_error_not_a_crash() {
    let f = Format::parse(r#"{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}"#).unwrap();
    assert!(f.execute(&data()).is_err());
}
