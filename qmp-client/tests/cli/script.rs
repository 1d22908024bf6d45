//! `qmp -`: a script on stdin, one reply object per line.

use serde_json::json;

use crate::harness::{Vm, qmp_on};

const SCRIPT: &str = r#"# a comment, then a blank line

query-status
{"execute": "qom-get", "arguments": {"path": "/machine", "property": "type"}, "id": "t1"}
qom-set path=/machine property=kernel value=5
qom-set path=/machine property=kernel value=after-the-error
"#;

#[test]
fn replies_are_ndjson_and_the_first_error_stops() {
    let vm = Vm::start();
    let ran = qmp_on(&vm.socket(), &["-"], Some(SCRIPT));
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let replies = ran.json_lines();
    assert_eq!(replies.len(), 3, "{ran:?}");
    assert!(replies[0].pointer("/return/status").is_some(), "{ran:?}");
    assert_eq!(
        replies[1],
        json!({"id": "t1", "return": "none-machine"}),
        "{ran:?}"
    );
    assert_eq!(
        replies[2].pointer("/error/class"),
        Some(&json!("GenericError")),
        "{ran:?}"
    );
    // The line after the error did not run.
    let ran = vm.qmp_ok(&["qom-get", "path=/machine", "property=kernel"]);
    assert_eq!(ran.json(), json!(""), "{ran:?}");
}

#[test]
fn keep_going_runs_every_line_and_still_fails() {
    let vm = Vm::start();
    let script = format!("{SCRIPT}this is=not a command\nnope\n");
    let ran = qmp_on(&vm.socket(), &["-", "--keep-going"], Some(&script));
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let replies = ran.json_lines();
    // Every command has its reply; the unreadable line only a message.
    assert_eq!(replies.len(), 5, "{ran:?}");
    assert_eq!(replies[3], json!({"return": {}}), "{ran:?}");
    assert_eq!(
        replies[4].pointer("/error/class"),
        Some(&json!("CommandNotFound")),
        "{ran:?}"
    );
    assert!(ran.stderr.contains("line 7: "), "{ran:?}");
    assert!(ran.stderr.contains("3 of 8 script lines failed"), "{ran:?}");
    let ran = vm.qmp_ok(&["qom-get", "path=/machine", "property=kernel"]);
    assert_eq!(ran.json(), json!("after-the-error"), "{ran:?}");
}
