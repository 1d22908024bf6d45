//! `Console::run` against a fake busybox shell.

use qemu_console::{Console, ConsoleConfig, Error};

use crate::{LONG, fake_shell};

const COMMANDS: &[(&str, &str, i32)] = &[
    ("uname -r", "6.1.0-43-cloud-amd64\n", 0),
    ("true", "", 0),
    ("false", "", 1),
    ("printf abc", "abc", 0),
    // Output that itself looks like a marker of another run cannot confuse it.
    ("cat trap", "@@1+@@\n@@1-0@@\nline\n", 3),
];

#[tokio::test]
async fn run_returns_output_and_status_despite_echo_prompts_and_wraps()
-> Result<(), Box<dyn std::error::Error>> {
    let (ours, theirs) = tokio::io::duplex(4096);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    let shell = tokio::spawn(async move { fake_shell::serve(theirs, COMMANDS).await });

    let uname = console.run("uname -r", LONG).await?;
    assert_eq!(
        (uname.output.as_str(), uname.status),
        ("6.1.0-43-cloud-amd64\n", 0)
    );
    assert_eq!(uname.raw, b"6.1.0-43-cloud-amd64\r\n");
    assert!(uname.success());

    let yes = console.run("true", LONG).await?;
    assert_eq!((yes.output.as_str(), yes.status), ("", 0));
    let no = console.run("false", LONG).await?;
    assert_eq!((no.output.as_str(), no.status), ("", 1));
    assert!(!no.success());

    let unterminated = console.run("printf abc", LONG).await?;
    assert_eq!(
        (unterminated.output.as_str(), unterminated.status),
        ("abc", 0)
    );
    let trap = console.run("cat trap", LONG).await?;
    assert_eq!(
        (trap.output.as_str(), trap.status),
        ("@@1+@@\n@@1-0@@\nline\n", 3)
    );
    let missing = console.run("no-such-command", LONG).await?;
    assert_eq!(missing.status, 127);

    // The echo of the long typed lines wrapped, and nothing of it leaked.
    assert!(console.transcript().windows(3).any(|w| w == b"\r\r\n"));
    drop(console);
    shell.await??;
    Ok(())
}

#[tokio::test]
async fn run_refuses_what_is_not_one_line() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, _theirs) = tokio::io::duplex(64);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    let error = console
        .run("echo a\necho b", LONG)
        .await
        .err()
        .ok_or("ran")?;
    assert!(matches!(error, Error::InvalidCommand { .. }), "{error}");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_run_that_never_finishes_names_the_command() -> Result<(), Box<dyn std::error::Error>> {
    let (ours, _theirs) = tokio::io::duplex(4096);
    let console = Console::attach(ours, ConsoleConfig::default())?;
    let error = console.run("sleep 1000", LONG).await.err().ok_or("ran")?;
    assert!(matches!(error, Error::Timeout { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains(r#"(marker of command "sleep 1000")"#),
        "{error}"
    );
    Ok(())
}
