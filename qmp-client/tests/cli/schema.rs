//! `qmp schema` and the "did you mean" check before sending.

use crate::harness::{Vm, qmp_on};

#[test]
fn schema_lists_commands_and_describes_arguments() {
    let vm = Vm::start();
    let ran = vm.qmp_ok(&["schema"]);
    let names: Vec<&str> = ran.stdout.lines().collect();
    for name in [
        "query-status",
        "device_add",
        "blockdev-add",
        "qmp_capabilities",
    ] {
        assert!(names.contains(&name), "{name} missing: {ran:?}");
    }
    assert!(names.is_sorted(), "{ran:?}");

    let ran = vm.qmp_ok(&["schema", "device_add"]);
    for line in ["device_add", "  driver: str", "  id?: str"] {
        assert!(
            ran.stdout.lines().any(|l| l == line),
            "{line:?} missing: {ran:?}"
        );
    }
    let ran = vm.qmp_ok(&["schema", "blockdev-add"]);
    for line in [
        "  driver: enum (",
        "  when driver=file:",
        "    filename: str",
        "  node-name?: str",
    ] {
        assert!(
            ran.stdout.lines().any(|l| l.starts_with(line)),
            "{line:?} missing: {ran:?}"
        );
    }
    let ran = qmp_on(&vm.socket(), &["schema", "query-stauts"], None);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.contains("`query-status`"), "{ran:?}");
}

#[test]
fn unknown_commands_and_arguments_fail_before_sending_with_did_you_mean() {
    let vm = Vm::start();
    let ran = qmp_on(&vm.socket(), &["query-stauts"], None);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stderr.starts_with("CommandNotFound: "), "{ran:?}");
    assert!(
        ran.stderr.contains("did you mean") && ran.stderr.contains("`query-status`"),
        "{ran:?}"
    );

    let ran = qmp_on(&vm.socket(), &["device_del", "idd=x"], None);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(
        ran.stderr.contains("'idd'") && ran.stderr.contains("`id`"),
        "{ran:?}"
    );
    // QEMU's own answer for the same mistake has no hint.
    let ran = qmp_on(
        &vm.socket(),
        &["--no-schema-check", "device_del", "idd=x"],
        None,
    );
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(!ran.stderr.contains("did you mean"), "{ran:?}");
}
