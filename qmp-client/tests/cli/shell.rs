//! The interactive shell in a real terminal: tmux runs `qmp`, the test
//! sends keys and reads the pane.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{LIMIT, QMP, Vm};

/// tmux on `PATH`, or a failure saying how to install it.
fn tmux_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("tmux"))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => path,
        None => panic!(
            "tmux is not installed: the interactive shell test runs `qmp` in a real terminal \
             under tmux. Install it with `sudo apt-get install -y tmux`."
        ),
    }
}

/// A private tmux server (its socket in the test's temp dir) running one
/// `qmp` shell; the server is killed on drop.
struct Terminal {
    tmux: PathBuf,
    socket: PathBuf,
}

impl Terminal {
    /// Starts `qmp -s <vm socket> --history <history>` in a 120x40 pane
    /// that stays after `qmp` exits, so its exit status can be read.
    fn start(vm: &Vm, name: &str, history: &Path) -> Terminal {
        let terminal = Terminal {
            tmux: tmux_binary(),
            socket: vm.dir().join(format!("tmux-{name}.sock")),
        };
        let socket = vm.socket().display().to_string();
        let history = history.display().to_string();
        terminal.tmux(&[
            "new-session",
            "-d",
            "-s",
            "qmp",
            "-x",
            "120",
            "-y",
            "40",
            // The shell prints qmp's exit status in the pane (tmux's own
            // #{pane_dead_status} is sometimes never set).
            "sh",
            "-c",
            "env -u QMP_SOCKET \"$0\" \"$@\"; echo \"[qmp exited: $?]\"",
            QMP,
            "-s",
            &socket,
            "--history",
            &history,
            ";",
            "set-option",
            "-t",
            "qmp",
            "remain-on-exit",
            "on",
        ]);
        // capture-pane drops trailing spaces: the prompt reads `(QEMU)`.
        terminal.wait_for_prompt_line("(QEMU)");
        terminal
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new(&self.tmux)
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output();
        match output {
            Ok(output) if output.status.success() => {
                String::from_utf8_lossy(&output.stdout).into_owned()
            }
            Ok(output) => panic!(
                "tmux {args:?} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
            Err(error) => panic!("cannot run tmux: {error}"),
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "qmp"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// What the pane shows.
    fn pane(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "qmp"])
    }

    /// The last non-empty line of the pane (where the prompt is).
    fn last_line(&self) -> String {
        let pane = self.pane();
        pane.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim_end()
            .to_owned()
    }

    /// Polls the pane until `condition` holds, within [`LIMIT`].
    fn wait_for(&self, what: &str, condition: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let pane = self.pane();
            if condition(&pane) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {LIMIT:?}; the pane:\n{pane}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Polls until the prompt line reads `line`.
    fn wait_for_prompt_line(&self, line: &str) {
        let deadline = Instant::now() + LIMIT;
        while self.last_line() != line {
            assert!(
                Instant::now() < deadline,
                "the prompt line never read {line:?}; the pane:\n{}",
                self.pane()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for qmp to exit and returns its exit status.
    fn wait_for_exit(&self) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let pane = self.pane();
            let status = pane.lines().find_map(|line| {
                let rest = line.trim().strip_prefix("[qmp exited: ")?;
                rest.strip_suffix(']').map(str::to_owned)
            });
            if let Some(status) = status {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "qmp did not exit within {LIMIT:?}:\n{pane}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // Best effort; the server may be gone already.
        let _ = Command::new(&self.tmux)
            .args(["-f", "/dev/null", "-S"])
            .arg(&self.socket)
            .arg("kill-server")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn completion_history_events_and_ctrl_d_in_a_real_terminal() {
    let vm = Vm::start();
    let history = vm.dir().join("history");
    let terminal = Terminal::start(&vm, "first", &history);

    // Tab completes a command name from the live schema, Enter runs it.
    terminal.keys(&["query-versi", "Tab"]);
    terminal.wait_for_prompt_line("(QEMU) query-version");
    terminal.keys(&["Enter"]);
    terminal.wait_for("the pretty reply", |pane| pane.contains("\"major\": "));

    // Tab completes an argument name of the command being typed.
    terminal.keys(&["device_add dri", "Tab"]);
    terminal.wait_for_prompt_line("(QEMU) device_add driver=");
    terminal.keys(&["C-u"]);
    terminal.wait_for_prompt_line("(QEMU)");

    // An event from another client shows while the shell waits at its prompt.
    vm.other_ok(&["stop"]);
    terminal.wait_for("the STOP event", |pane| pane.contains(r#""event":"STOP""#));

    // Shorthand, an HMP command, and a QMP error that keeps the shell going.
    terminal.keys(&["qom-get path=/machine property=type", "Enter"]);
    terminal.wait_for("the qom-get reply", |pane| {
        pane.contains("\"none-machine\"")
    });
    terminal.keys(&["hmp info status", "Enter"]);
    terminal.wait_for("the HMP text", |pane| pane.contains("VM status: paused"));
    terminal.keys(&["nope", "Enter"]);
    terminal.wait_for("the error", |pane| pane.contains("CommandNotFound: "));

    // Up recalls the last line.
    terminal.keys(&["Up"]);
    terminal.wait_for_prompt_line("(QEMU) nope");
    terminal.keys(&["C-u"]);
    terminal.wait_for_prompt_line("(QEMU)");

    // Ctrl-D exits cleanly and saves the history.
    terminal.keys(&["C-d"]);
    assert_eq!(terminal.wait_for_exit(), "0", "{}", terminal.pane());
    let saved = std::fs::read_to_string(&history).unwrap_or_default();
    for line in ["query-version", "hmp info status", "nope"] {
        assert!(
            saved.lines().any(|l| l == line),
            "{line:?} not in the history file:\n{saved}"
        );
    }
    drop(terminal);

    // A new shell recalls the previous session's lines.
    let terminal = Terminal::start(&vm, "second", &history);
    terminal.keys(&["Up"]);
    terminal.wait_for_prompt_line("(QEMU) nope");
    terminal.keys(&["Up"]);
    terminal.wait_for_prompt_line("(QEMU) hmp info status");
    terminal.keys(&["C-u", "C-d"]);
    assert_eq!(terminal.wait_for_exit(), "0", "{}", terminal.pane());
}

#[test]
fn transactions_collect_actions_until_the_closing_paren() {
    let vm = Vm::start();
    let terminal = Terminal::start(&vm, "transaction", &vm.dir().join("history"));
    terminal.keys(&["transaction(", "Enter"]);
    terminal.wait_for_prompt_line("TRANS>");
    // QEMU runs the block: the abort action fails it as a whole.
    terminal.keys(&["abort )", "Enter"]);
    terminal.wait_for("the transaction's answer", |pane| {
        pane.contains("Transaction aborted using Abort action")
    });
    terminal.wait_for_prompt_line("(QEMU)");
    // `quit` ends QEMU; the shell sees the expected end and exits 0.
    terminal.keys(&["quit", "Enter"]);
    assert_eq!(terminal.wait_for_exit(), "0", "{}", terminal.pane());
}
