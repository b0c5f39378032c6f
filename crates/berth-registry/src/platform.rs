//! Platforms (`linux/amd64`, `linux/arm64/v8`) and containerd-style matching against
//! the entries of a manifest list or OCI index.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// An OCI platform as `--platform` names it and as index entries carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this machine, as containerd's `DefaultSpec` (arm64 is `v8`).
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", Some("v8")),
            "x86" => ("386", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        }
    }

    /// containerd's `platforms.Parse`: `os`, `arch`, `os/arch`, `os/arch/variant`
    /// (normalized: `x86_64` → `amd64`, `aarch64` → `arm64`...). A lone component is an
    /// OS when it is a known OS, else an architecture on the host's OS.
    pub fn parse(s: &str) -> Result<Platform, RegistryError> {
        let invalid = || {
            RegistryError::InvalidArgument(format!(
                "{s:?}: unknown operating system or architecture: invalid argument"
            ))
        };
        let lower = s.to_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if parts.iter().any(|p| !valid_part(p)) || parts.len() > 3 {
            return Err(invalid());
        }
        let host = Platform::host();
        let p = match parts.as_slice() {
            [one] if is_known_os(one) => Platform {
                os: one.to_string(),
                architecture: host.architecture,
                variant: host.variant,
            },
            [one] if is_known_arch(&normalize_arch(one, None).0) => {
                let (architecture, variant) = normalize_arch(one, None);
                Platform {
                    os: host.os,
                    architecture,
                    variant,
                }
            }
            [os, arch] if is_known_os(os) => {
                let (architecture, variant) = normalize_arch(arch, None);
                Platform {
                    os: os.to_string(),
                    architecture,
                    variant,
                }
            }
            [os, arch, variant] if is_known_os(os) => {
                let (architecture, variant) = normalize_arch(arch, Some(variant));
                Platform {
                    os: os.to_string(),
                    architecture,
                    variant,
                }
            }
            _ => return Err(invalid()),
        };
        Ok(p)
    }

    /// Normalized form used for comparisons (arm64's `v8` dropped, arm defaults to `v7`).
    fn normalized(&self) -> Platform {
        let (architecture, variant) =
            normalize_arch(&self.architecture.to_lowercase(), self.variant.as_deref());
        Platform {
            os: self.os.to_lowercase(),
            architecture,
            variant,
        }
    }

    /// How well `candidate` (an index entry) runs on `self` (the wanted platform):
    /// `None` when it cannot, else a rank where lower is better (an exact variant is 0).
    pub fn match_rank(&self, candidate: &Platform) -> Option<u32> {
        let want = self.normalized();
        let have = candidate.normalized();
        if want.os != have.os || want.architecture != have.architecture {
            return None;
        }
        if want.variant == have.variant {
            return Some(0);
        }
        match (want.variant.as_deref(), have.variant.as_deref()) {
            // arm vN runs vM for M < N (containerd's Only matcher).
            (Some(w), Some(h)) if want.architecture == "arm" => {
                let (w, h) = (arm_level(w)?, arm_level(h)?);
                (h < w).then(|| w - h)
            }
            _ => None,
        }
    }
}

fn arm_level(v: &str) -> Option<u32> {
    v.strip_prefix('v')?.parse().ok()
}

impl fmt::Display for Platform {
    /// containerd's `FormatAll`: `linux/amd64`, `linux/arm64/v8`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = if self.os.is_empty() {
            "unknown"
        } else {
            &self.os
        };
        write!(f, "{os}/{}", self.architecture)?;
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

fn is_known_os(s: &str) -> bool {
    matches!(
        s,
        "aix"
            | "android"
            | "darwin"
            | "dragonfly"
            | "freebsd"
            | "hurd"
            | "illumos"
            | "ios"
            | "js"
            | "linux"
            | "nacl"
            | "netbsd"
            | "openbsd"
            | "plan9"
            | "solaris"
            | "windows"
            | "zos"
            | "wasip1"
    )
}

fn is_known_arch(s: &str) -> bool {
    matches!(
        s,
        "386"
            | "amd64"
            | "amd64p32"
            | "arm"
            | "armbe"
            | "arm64"
            | "arm64be"
            | "ppc64"
            | "ppc64le"
            | "loong64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "mips64p32"
            | "mips64p32le"
            | "ppc"
            | "riscv"
            | "riscv64"
            | "s390"
            | "s390x"
            | "sparc"
            | "sparc64"
            | "wasm"
    )
}

/// containerd's `normalizeArch`.
fn normalize_arch(arch: &str, variant: Option<&str>) -> (String, Option<String>) {
    let variant = variant.map(|v| v.to_lowercase()).filter(|v| !v.is_empty());
    let (a, v): (&str, Option<String>) = match arch {
        "i386" => ("386", None),
        "x86_64" | "x86-64" | "amd64" => ("amd64", variant.filter(|v| v != "v1")),
        "aarch64" | "arm64" => ("arm64", variant.filter(|v| v != "8" && v != "v8")),
        "armhf" => ("arm", Some("v7".into())),
        "armel" => ("arm", Some("v6".into())),
        "arm" => (
            "arm",
            Some(match variant.as_deref() {
                None | Some("7") | Some("v7") => "v7".to_string(),
                Some("5") => "v5".to_string(),
                Some("6") => "v6".to_string(),
                Some("8") => "v8".to_string(),
                Some(other) => other.to_string(),
            }),
        ),
        other => (other, variant),
    };
    (a.to_string(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parses_and_formats() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(p("linux/arm64/v8").to_string(), "linux/arm64");
        assert_eq!(p("linux/aarch64").to_string(), "linux/arm64");
        assert_eq!(p("linux/arm").to_string(), "linux/arm/v7");
        assert_eq!(p("linux/arm/v6").to_string(), "linux/arm/v6");
        assert_eq!(p("LINUX/AMD64").to_string(), "linux/amd64");
        assert_eq!(p("amd64").os, std::env::consts::OS);
        assert_eq!(p("linux").os, "linux");
        assert_eq!(
            Platform::parse("foo").unwrap_err().to_string(),
            "\"foo\": unknown operating system or architecture: invalid argument"
        );
        assert!(Platform::parse("linux/amd64/v2/x").is_err());
        assert!(Platform::parse("linux//x").is_err());
        let host = Platform::host();
        assert_eq!(host.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.to_string(), "linux/amd64");
        }
    }

    #[test]
    fn matching_follows_containerd() {
        let arm64 = |v: Option<&str>| Platform {
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: v.map(Into::into),
        };
        assert_eq!(arm64(Some("v8")).match_rank(&arm64(None)), Some(0));
        assert_eq!(arm64(None).match_rank(&arm64(Some("v8"))), Some(0));
        assert_eq!(p("linux/amd64").match_rank(&p("linux/arm64")), None);
        assert_eq!(p("linux/amd64").match_rank(&p("windows/amd64")), None);
        assert_eq!(p("linux/arm/v7").match_rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(p("linux/arm/v6").match_rank(&p("linux/arm/v7")), None);
        let amd64_v3 = Platform {
            variant: Some("v3".into()),
            ..p("linux/amd64")
        };
        assert_eq!(p("linux/amd64").match_rank(&amd64_v3), None);
    }
}
