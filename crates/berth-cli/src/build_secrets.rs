//! `berth build --secret id=x,src=FILE` / `id=x,env=VAR` (buildx's forms): read on the
//! client and sent to the daemon in Berth's `X-Berth-Build-Secrets` header (its wire
//! format in [`berth_api::build_secrets`]), which the classic `POST /build` has no
//! field for. Without `src` and `env`, the variable named like the ID is used when set, else
//! the file of that name.

use std::collections::BTreeMap;

pub use berth_api::build_secrets::{encode as header_value, HEADER};

/// Reads the `--secret` values.
pub fn read(specs: &[String]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        let mut kind = None;
        for field in spec.split(',') {
            let (k, v) = field.split_once('=').ok_or_else(|| {
                format!("invalid secret {spec:?}: {field:?} must be a key=value pair")
            })?;
            match k.to_ascii_lowercase().as_str() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" if v == "file" || v == "env" => kind = Some(v.to_string()),
                "type" => return Err(format!("unsupported secret type {v:?}")),
                _ => return Err(format!("unexpected key '{k}' in '{field}'")),
            }
        }
        let id = id
            .filter(|i| !i.is_empty())
            .ok_or_else(|| format!("invalid secret {spec:?}: id is required"))?;
        let value = match (src, env) {
            (Some(path), None) if kind.as_deref() != Some("env") => std::fs::read(&path)
                .map_err(|e| format!("failed to read secret {id} from {path}: {e}"))?,
            (Some(var), None) | (None, Some(var)) => std::env::var_os(&var)
                .ok_or_else(|| format!("secret {id}: environment variable {var} is not set"))?
                .into_encoded_bytes(),
            (None, None) => match std::env::var_os(&id) {
                Some(v) if kind.as_deref() != Some("file") => v.into_encoded_bytes(),
                _ => std::fs::read(&id).map_err(|e| format!("failed to read secret {id}: {e}"))?,
            },
            (Some(_), Some(_)) => {
                return Err(format!("invalid secret {spec:?}: both src and env given"))
            }
        };
        out.insert(id, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_env_forms() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "from-file").unwrap();
        let s = read(&[format!("id=a,src={}", f.display())]).unwrap();
        assert_eq!(s["a"], b"from-file");
        std::env::set_var("BERTH_TEST_SECRET_VAR", "from-env");
        let s = read(&["id=b,env=BERTH_TEST_SECRET_VAR".to_string()]).unwrap();
        assert_eq!(s["b"], b"from-env");
        assert!(read(&["src=/x".to_string()]).is_err());
        assert!(read(&["id=c,env=BERTH_TEST_NOT_SET_ANYWHERE".to_string()]).is_err());
        assert!(read(&["id=d,src=/nonexistent/berth".to_string()]).is_err());
        assert_eq!(
            berth_api::build_secrets::decode(&header_value(&s)).unwrap(),
            s
        );
    }
}
