//! qemukit's project automation: `cargo xtask <command>`.
//!
//! `ci` is what `.ci/run` and the README's test command run on a fresh
//! Debian machine: it installs what is missing, then checks and tests
//! everything. `demo` is the README's main job.

// A command-line tool reports on its own terminal.
#![allow(clippy::print_stderr, clippy::print_stdout)]

mod apt;
mod cmd;
mod codegen;
mod deps;
mod guest;
mod qemu;
mod suite;
mod tasks;

use std::env;
use std::process::ExitCode;
use std::time::Duration;

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo [--qemu V]     install QEMU if missing, build the guest, boot it with qemu-machine and drive it
  ci                  install what is missing (QEMU, tmux), then fmt, codegen --check, clippy, doc,
                      the guest and every test against each QEMU version we support (10.0, then 7.2)
  integ [--qemu V] [FILTER…]
                      install QEMU if missing, build the guest, run every test that starts QEMU
                      (the whole workspace's tests) against QEMU V (default: the installed one)
  guest               build the test guest into target/qemukit-guest/ and boot it once
                      (--no-boot: build only)
  qemu fetch|path V   unpack QEMU V (e.g. 7.2) beside the installed one under target/qemukit-qemu/
                      and print a binary path usable as QEMUKIT_QEMU (`path` fetches when needed)
  bench [--qemu V]    run the workspace's benchmarks (other arguments go to `cargo bench`)
  deps                install what is missing (QEMU 10.0 from bookworm-backports, tmux) and nothing else
  codegen [--check]   regenerate qmp-proto's typed QMP layer (qmp_proto::qapi) from the recorded schemas

The primary QEMU is 10.0 from Debian's bookworm-backports (the suite is added to apt, reusing the
machine's Debian mirror, when missing); other versions run unpacked side by side, without root.";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("demo") => tasks::demo(rest),
        Some("ci") if rest.is_empty() => tasks::ci(),
        Some("ci") => Err(format!("`cargo xtask ci` takes no arguments; got {rest:?}")),
        Some("integ") => tasks::integ(rest),
        Some("guest") => guest_command(rest),
        Some("bench") => tasks::bench(rest),
        Some("qemu") => qemu::command(rest),
        Some("deps") => deps::ensure().map(|_| ()),
        Some("codegen") => codegen::run(rest),
        Some("-h" | "--help" | "help") | None => {
            eprintln!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn guest_command(args: &[String]) -> Result {
    let boot = match args {
        [] => true,
        [flag] if flag == "--no-boot" => false,
        _ => {
            return Err(format!(
                "usage: cargo xtask guest [--no-boot]; got {args:?}"
            ));
        }
    };
    let qemu = deps::ensure()?;
    let built = guest::build()?;
    if !boot {
        return Ok(());
    }
    for agent in [false, true] {
        let options = guest::BootOptions {
            agent,
            timeout: Duration::from_secs(60),
        };
        let report = guest::boot_check(&qemu, &built, options)?;
        let which = if agent { "guest with qemu-ga" } else { "guest" };
        let agent_note = report
            .agent_answered
            .map(|after| format!(", qemu-ga answered {after:.2?} after the ready marker"))
            .unwrap_or_default();
        eprintln!(
            "xtask: {which}: spawn → `{}` in {:.2?}{agent_note}; `poweroff -f` → exit in {:.2?}",
            guest::READY_MARKER,
            report.to_ready,
            report.to_exit,
        );
    }
    Ok(())
}
