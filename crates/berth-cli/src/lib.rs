//! Berth's command line: Docker's commands, flags and output, as a plain Engine API client.
//!
//! [`run`] parses the argv (clap, [`args`]), talks to the daemon over its unix socket
//! ([`client`]), and prints tables, templates and errors exactly as the Docker CLI does
//! ([`formatters`], [`template`]). Exit codes follow Docker: 125 for refused flags and
//! create errors, 126/127 when the command cannot run, else the container's own code.

/// `print!` that ends the process quietly when stdout is a closed pipe (`berth ps | head`),
/// as a Go CLI killed by SIGPIPE does (exit 141).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        if let Err(e) = write!(o, $($t)*).and_then(|_| o.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(141);
            }
        }
    }};
}

/// `println!` with [`out!`]'s handling of a closed pipe.
macro_rules! outln {
    () => { out!("\n") };
    ($($t:tt)*) => { out!("{}\n", format_args!($($t)*)) };
}

pub mod args;
pub mod build;
pub mod build_secrets;
pub mod client;
pub mod completion;
pub mod config_file;
pub mod container;
pub mod context;
pub mod context_cmd;
pub mod cp;
pub mod create_body;
pub mod credentials;
pub mod detach;
pub mod device_flags;
pub mod disk_usage;
pub mod events;
pub mod formatters;
pub mod health_flags;
pub mod help;
mod help_layout;
pub mod image;
pub mod image_io;
pub mod jsonmessage;
pub mod network;
pub mod opts;
pub mod registry;
pub mod run_flags;
pub mod search;
pub mod security_flags;
pub mod stats;
pub mod stream;
pub mod system;
pub mod system_prune;
pub mod template;
#[cfg(test)]
mod template_fuzz;
pub mod terminal;
pub mod units;
pub mod update;
pub mod usage;
pub mod volume;

use std::ffi::OsString;
use std::io::Write;

use args::{Cli, Cmd, ContainerCmd, ImageCmd, SystemCmd};
use client::{ApiError, Client};

/// Why a command failed; [`run`] prints it and picks the exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// An API error: printed as is, exit 1.
    #[error("{0}")]
    Api(#[from] ApiError),
    /// A refused flag value: printed with the `--help` hint, exit 125.
    #[error("{0}")]
    Flag(#[from] opts::FlagError),
    /// Any other error, printed as is, exit 1.
    #[error("{0}")]
    Msg(String),
}

/// The text of an I/O error the way Go prints it (`no such file or directory`).
pub fn io_error_text(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_lowercase(),
        None => e.to_string(),
    }
}

/// Asks `question [y/N] ` on the terminal; true for `y`/`yes`.
pub fn confirm(question: &str) -> bool {
    out!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim().to_lowercase().as_str(), "y" | "yes")
}

/// The subcommand path as typed (`run`, `container ls`), for `See 'berth … --help'.`.
fn command_path(args: &[OsString]) -> String {
    let mut words = Vec::new();
    let mut skip_next = false;
    for a in args.iter().skip(1) {
        let a = a.to_string_lossy();
        if skip_next {
            skip_next = false;
            continue;
        }
        if a == "-H" || a == "--host" || a == "--config" || a == "-c" || a == "--context" {
            skip_next = true;
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        words.push(a.to_string());
        if !(words.len() == 1
            && (a == "container"
                || a == "image"
                || a == "volume"
                || a == "system"
                || a == "network"
                || a == "context"
                || a == "builder"))
        {
            break;
        }
    }
    words.join(" ")
}

fn report_clap_error(e: clap::Error, args: &[OsString]) -> i32 {
    use clap::error::{ContextKind, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // The same request again, now with the help pages laid out as Docker's.
            match help::pages().try_get_matches_from(args) {
                Err(laid_out) => {
                    let _ = laid_out.print();
                }
                Ok(_) => {
                    let _ = e.print();
                }
            }
            return 0;
        }
        _ => {}
    }
    let path = command_path(args);
    match e.kind() {
        ErrorKind::UnknownArgument => {
            let arg = e
                .get(ContextKind::InvalidArg)
                .map(|a| a.to_string())
                .unwrap_or_default();
            if !arg.starts_with('-') {
                eprintln!("{}", usage::arity_error(&path));
                return 1;
            }
            let arg = arg.split('=').next().unwrap_or(&arg).to_string();
            let msg = if arg.starts_with("--") {
                format!("unknown flag: {arg}")
            } else {
                format!(
                    "unknown shorthand flag: '{}' in {arg}",
                    arg.trim_start_matches('-').chars().next().unwrap_or('?')
                )
            };
            eprintln!("{}", usage::flag_error(&path, &msg));
            125
        }
        ErrorKind::MissingSubcommand => {
            let mut cmd = help::pages();
            let help = match path.split(' ').next().filter(|p| !p.is_empty()) {
                Some(p) => cmd
                    .find_subcommand_mut(p)
                    .map(|c| c.render_help().to_string())
                    .unwrap_or_default(),
                None => cmd.render_help().to_string(),
            };
            outln!("{help}");
            0
        }
        ErrorKind::InvalidSubcommand => {
            let sub = e
                .get(ContextKind::InvalidSubcommand)
                .map(|a| a.to_string())
                .unwrap_or_default();
            let parent = if path.contains(' ') {
                path.rsplit_once(' ').map(|(p, _)| p).unwrap_or("")
            } else {
                ""
            };
            if parent.is_empty() {
                eprintln!("berth: unknown command: berth {sub}\n\nRun 'berth --help' for more information");
            } else {
                eprintln!("berth: unknown command: berth {parent} {sub}\n\nUsage:  berth {parent}\n\nRun 'berth {parent} --help' for more information");
            }
            1
        }
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::TooManyValues
        | ErrorKind::WrongNumberOfValues => {
            eprintln!("{}", usage::arity_error(&path));
            1
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            eprintln!("{}", usage::flag_error(&path, &first));
            125
        }
    }
}

/// Runs the CLI with the full argv (`args[0]` is the program name); returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let parsed = <Cli as clap::CommandFactory>::command()
        .try_get_matches_from(&args)
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m));
    let cli = match parsed {
        Ok(c) => c,
        Err(e) => return report_clap_error(e, &args),
    };
    if cli.version {
        outln!("Berth version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    if cli.cmd.is_none() {
        outln!("{}", help::pages().render_help());
        return 0;
    }
    let path = command_path(&args);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    let result = rt.block_on(dispatch(cli));
    // Stdin readers live on blocking threads; do not wait for them.
    rt.shutdown_background();
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => code,
        Err(Failure::Flag(e)) => {
            eprintln!("{}", usage::flag_error(&path, &e.to_string()));
            125
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32, Failure> {
    registry::set_config_flag(cli.config.clone());
    let Some(cmd) = &cli.cmd else {
        return Ok(0);
    };
    let config_dir = config_file::config_dir(cli.config.as_deref());
    if let Cmd::Context(cc) = cmd {
        let g = context_cmd::Globals {
            host_flag: cli.host.as_deref(),
            context_flag: cli.context.as_deref(),
            config_dir,
        };
        return context_cmd::dispatch(&g, cc);
    }
    if let Cmd::Completion(sh) = cmd {
        return completion::completion(*sh);
    }
    let (cfg, _) = config_file::ConfigFile::load(&config_dir);
    let ep = context::resolve(
        cli.host.as_deref(),
        cli.context.as_deref(),
        &config_dir,
        &cfg,
    )
    .map_err(Failure::Msg)?;
    let c = Client::new(Some(ep.host.clone()))?
        .start_daemon_if_silent(cli.start_daemon)?
        .negotiating();
    let ctx = ep.context.as_str();
    match cmd {
        Cmd::Context(_) | Cmd::Completion(_) => Ok(0),
        Cmd::Daemon(_) => Err(Failure::Msg(
            "the daemon runs as `berth daemon [OPTIONS]`: `daemon` must be the first argument"
                .into(),
        )),
        Cmd::Version(f) => system::version(&c, ctx, f.format.as_deref()).await,
        Cmd::Info(f) | Cmd::System(SystemCmd::Info(f)) => {
            system::info(&c, ctx, f.format.as_deref()).await
        }
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => image::import(&c, a).await,
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => image::images(&c, a).await,
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => image::rmi(&c, a).await,
        Cmd::Tag(a) | Cmd::Image(ImageCmd::Tag(a)) => image::tag(&c, a).await,
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => image::history(&c, a).await,
        Cmd::Image(ImageCmd::Inspect(a)) => {
            let a2 = args::InspectArgs {
                format: a.format.clone(),
                kind: Some("image".into()),
                size: false,
                names: a.names.clone(),
            };
            system::inspect(&c, &a2).await
        }
        Cmd::Inspect(a) => system::inspect(&c, a).await,
        Cmd::Container(ContainerCmd::Inspect(a)) => {
            let a2 = args::InspectArgs {
                format: a.format.clone(),
                kind: Some("container".into()),
                size: a.size,
                names: a.names.clone(),
            };
            system::inspect(&c, &a2).await
        }
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => container::create(&c, a).await,
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => container::run(&c, a).await,
        Cmd::Start(a) | Cmd::Container(ContainerCmd::Start(a)) => container::start(&c, a).await,
        Cmd::Attach(a) | Cmd::Container(ContainerCmd::Attach(a)) => container::attach(&c, a).await,
        Cmd::Stop(a) | Cmd::Container(ContainerCmd::Stop(a)) => container::stop(&c, a, false).await,
        Cmd::Restart(a) | Cmd::Container(ContainerCmd::Restart(a)) => {
            container::stop(&c, a, true).await
        }
        Cmd::Kill(a) | Cmd::Container(ContainerCmd::Kill(a)) => container::kill(&c, a).await,
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => container::rm(&c, a).await,
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => container::ps(&c, a).await,
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => container::logs(&c, a).await,
        Cmd::Wait(a) | Cmd::Container(ContainerCmd::Wait(a)) => container::wait(&c, a).await,
        Cmd::Rename(a) | Cmd::Container(ContainerCmd::Rename(a)) => container::rename(&c, a).await,
        Cmd::Pause(a) | Cmd::Container(ContainerCmd::Pause(a)) => {
            container::pause(&c, a, "pause").await
        }
        Cmd::Unpause(a) | Cmd::Container(ContainerCmd::Unpause(a)) => {
            container::pause(&c, a, "unpause").await
        }
        Cmd::Top(a) | Cmd::Container(ContainerCmd::Top(a)) => container::top(&c, a).await,
        Cmd::Cp(a) | Cmd::Container(ContainerCmd::Cp(a)) => cp::cp(&c, a).await,
        Cmd::Diff(a) | Cmd::Container(ContainerCmd::Diff(a)) => cp::diff(&c, &a.container).await,
        Cmd::Exec(a) | Cmd::Container(ContainerCmd::Exec(a)) => container::exec(&c, a).await,
        Cmd::Container(ContainerCmd::Prune(a)) => container::prune(&c, a).await,
        Cmd::Volume(v) => volume::dispatch(&c, v).await,
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => image_io::save(&c, a).await,
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => image_io::load(&c, a).await,
        Cmd::Image(ImageCmd::Prune(a)) => image_io::prune(&c, a).await,
        Cmd::Commit(a) | Cmd::Container(ContainerCmd::Commit(a)) => image_io::commit(&c, a).await,
        Cmd::Export(a) | Cmd::Container(ContainerCmd::Export(a)) => image_io::export(&c, a).await,
        Cmd::Build(a) | Cmd::Image(ImageCmd::Build(a)) => build::build(&c, a).await,
        Cmd::Builder(args::BuilderCmd::Prune(a)) => build::prune(&c, a).await,
        Cmd::System(SystemCmd::Df(a)) => disk_usage::df(&c, a).await,
        Cmd::System(SystemCmd::Check) => disk_usage::check(&c).await,
        Cmd::System(SystemCmd::Prune(a)) => system_prune::prune(&c, a).await,
        Cmd::Events(a) | Cmd::System(SystemCmd::Events(a)) => events::events(&c, a).await,
        Cmd::Stats(a) | Cmd::Container(ContainerCmd::Stats(a)) => stats::stats(&c, a).await,
        Cmd::Port(a) | Cmd::Container(ContainerCmd::Port(a)) => network::port(&c, a).await,
        Cmd::Update(a) | Cmd::Container(ContainerCmd::Update(a)) => update::update(&c, a).await,
        Cmd::Network(n) => network::network(&c, n).await,
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => registry::pull(&c, a).await,
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => registry::push(&c, a).await,
        Cmd::Login(a) => registry::login(&c, a).await,
        Cmd::Search(a) => search::search(&c, a).await,
        Cmd::Logout(a) => registry::logout(a).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_paths_for_help_hints() {
        assert_eq!(
            command_path(&os(&["berth", "-H", "unix:///x", "run", "-d", "busybox"])),
            "run"
        );
        assert_eq!(
            command_path(&os(&["berth", "container", "ls", "-a"])),
            "container ls"
        );
    }

    #[test]
    fn unknown_flags_exit_125() {
        assert_eq!(run(os(&["berth", "ps", "--bogus"])), 125);
        assert_eq!(run(os(&["berth", "run", "--bogus", "busybox"])), 125);
    }

    #[test]
    fn aliases_parse() {
        for argv in [
            &["berth", "container", "ls", "-a"][..],
            &["berth", "container", "ps"],
            &["berth", "image", "ls", "-q"],
            &["berth", "image", "rm", "x"],
            &["berth", "container", "rm", "-f", "x"],
            &["berth", "stop", "-t", "1", "-s", "KILL", "a", "b"],
            &[
                "berth", "logs", "-f", "-t", "--tail", "5", "--since", "10m", "c",
            ],
            &[
                "berth", "exec", "-e", "A=1", "-w", "/", "c", "sh", "-c", "exit 3",
            ],
            &["berth", "history", "--no-trunc", "-H=false", "busybox"],
        ] {
            assert!(Cli::try_parse_from(argv).is_ok(), "{argv:?}");
        }
    }
}
