//! `guest-exec` and `guest-exec-status`: running a process in the guest.

use serde::{Deserialize, Serialize};

use super::base64_data;
use crate::Command;

/// `guest-exec`: starts a process in the guest. Poll its end with
/// [`GuestExecStatus::query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestExec {
    /// The program, as a path in the guest.
    pub path: String,
    /// Its arguments (without `argv[0]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<Vec<String>>,
    /// Its environment, as `NAME=value` strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Bytes for its standard input (sent base64-encoded).
    #[serde(
        rename = "input-data",
        default,
        serialize_with = "base64_data::serialize_opt",
        deserialize_with = "base64_data::deserialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_data: Option<Vec<u8>>,
    /// Whether to capture its standard output and error.
    #[serde(
        rename = "capture-output",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub capture_output: Option<bool>,
}

impl GuestExec {
    /// Runs `path` with no arguments and no output capture.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            arg: None,
            env: None,
            input_data: None,
            capture_output: None,
        }
    }
}

impl Command for GuestExec {
    const NAME: &'static str = "guest-exec";
    type Output = GuestExecStarted;
}

/// What `guest-exec` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestExecStarted {
    /// The process id in the guest, for `guest-exec-status`.
    pub pid: i64,
}

impl GuestExecStarted {
    /// The answer for a process `pid` (for a mock agent).
    pub fn new(pid: i64) -> Self {
        Self { pid }
    }
}

/// `guest-exec-status`: the state of a process started by `guest-exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestExecStatusQuery {
    /// The pid `guest-exec` returned.
    pub pid: i64,
}

impl Command for GuestExecStatusQuery {
    const NAME: &'static str = "guest-exec-status";
    type Output = GuestExecStatus;
}

/// What `guest-exec-status` returns: once `exited`, the exit code or
/// signal and the captured output (decoded from base64).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GuestExecStatus {
    /// Whether the process has ended.
    pub exited: bool,
    /// Its exit code, when it exited normally.
    #[serde(rename = "exitcode", default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The signal that killed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i64>,
    /// What it wrote on standard output (when captured).
    #[serde(
        rename = "out-data",
        default,
        serialize_with = "base64_data::serialize",
        deserialize_with = "base64_data::deserialize"
    )]
    pub stdout: Vec<u8>,
    /// What it wrote on standard error (when captured).
    #[serde(
        rename = "err-data",
        default,
        serialize_with = "base64_data::serialize",
        deserialize_with = "base64_data::deserialize"
    )]
    pub stderr: Vec<u8>,
    /// Whether the agent cut standard output short (16 MiB limit).
    #[serde(rename = "out-truncated", default)]
    pub stdout_truncated: bool,
    /// Whether the agent cut standard error short.
    #[serde(rename = "err-truncated", default)]
    pub stderr_truncated: bool,
}

impl GuestExecStatus {
    /// The `guest-exec-status` command for `pid`.
    pub fn query(pid: i64) -> GuestExecStatusQuery {
        GuestExecStatusQuery { pid }
    }

    /// A finished process's status (for a mock agent).
    pub fn exited(exit_code: i64, stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        Self {
            exited: true,
            exit_code: Some(exit_code),
            stdout,
            stderr,
            ..Self::default()
        }
    }

    /// Whether the process exited with code 0.
    pub fn success(&self) -> bool {
        self.exited && self.exit_code == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_is_base64_both_ways() {
        let mut exec = GuestExec::new("/bin/cat");
        exec.input_data = Some(b"hello\n".to_vec());
        let arguments = exec.arguments();
        assert!(
            matches!(&arguments, Ok(Some(map)) if map["input-data"] == "aGVsbG8K"),
            "{arguments:?}"
        );
        let back: Result<GuestExec, _> = serde_json::from_value(json!({
            "path": "/bin/cat", "input-data": "aGVsbG8K"
        }));
        assert!(
            matches!(&back, Ok(exec) if exec.input_data.as_deref() == Some(&b"hello\n"[..])),
            "{back:?}"
        );

        let done = GuestExecStatus::exited(0, b"out".to_vec(), Vec::new());
        let value = serde_json::to_value(&done);
        assert!(
            matches!(&value, Ok(value) if value["out-data"] == "b3V0" && value["exitcode"] == 0),
            "{value:?}"
        );
        let parsed = GuestExecStatusQuery::parse_output(json!({"exited": false}));
        assert!(
            matches!(&parsed, Ok(status) if !status.exited && status.stdout.is_empty()),
            "{parsed:?}"
        );
        let bad = GuestExecStatusQuery::parse_output(json!({"exited": true, "out-data": "a*b"}));
        assert!(
            matches!(&bad, Err(error) if error.to_string().contains("Invalid")),
            "{bad:?}"
        );
    }
}
