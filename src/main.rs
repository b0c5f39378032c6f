//! `berth`: one binary that is the CLI, the daemon (`berth daemon`), the per-container
//! shim (`berth shim`), the exec helper (`berth exec-helper`) and a pod's pause
//! (`berth pod-pause`).

use std::ffi::OsString;

fn main() {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    // `--init`: the binary mounted as /sbin/docker-init is the container's PID 1.
    let name = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if name == berth_runtime::tiny_init::INIT_NAME {
        std::process::exit(berth_runtime::tiny_init::main(&args[1..]));
    }
    let sub = args
        .get(1)
        .and_then(|a| a.to_str())
        .unwrap_or("")
        .to_string();
    let code = match sub.as_str() {
        "daemon" => {
            args.remove(0);
            match berth_daemon::run(args) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("berth daemon: {e:#}");
                    1
                }
            }
        }
        "shim" => berth_runtime::shim::main(&args[2..]),
        "exec-helper" => berth_runtime::exec::main(&args[2..]),
        // Hidden: a CRI pod sandbox's pause as a plain process (sandboxes run the same
        // code as their init, see `berth_runtime::pause`). Not `pause`: that is
        // `docker pause`.
        berth_runtime::pause::SUBCOMMAND => berth_runtime::pause::main(),
        _ => berth_cli::run(args),
    };
    std::process::exit(code);
}
