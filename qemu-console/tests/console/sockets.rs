//! The connectors: socket pair handed to a child, Unix path, TCP.

use std::os::fd::AsRawFd as _;
use std::time::Duration;

use qemu_console::{Console, ConsoleConfig, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

use crate::LONG;

#[tokio::test]
async fn a_child_inherits_the_other_end_of_the_socket_pair()
-> Result<(), Box<dyn std::error::Error>> {
    let (console, qemu_end) = Console::socketpair(ConsoleConfig::default())?;
    let fd = qemu_end.as_raw_fd();
    // The child reads a line from the console and answers on the same fd, as QEMU's serial port would.
    // bash, as dash refuses descriptors above 9 in redirections.
    let mut child = std::process::Command::new("bash");
    child
        .arg("-c")
        .arg(format!("read line <&{fd}; echo \"got $line\" >&{fd}"));
    qemu_end.pass_to(&mut child);
    // The command owns our copy of the fd: it must go, or the console never
    // sees EOF.
    let mut command = tokio::process::Command::from(child);
    let mut child = command.kill_on_drop(true).spawn()?;
    drop(command);

    console.send_line("hello").await?;
    assert_eq!(console.expect("got hello\n", LONG).await?.before(), b"");
    assert!(console.expect_eof(LONG).await?.is_empty());
    assert!(tokio::time::timeout(LONG, child.wait()).await??.success());
    Ok(())
}

#[tokio::test]
async fn other_children_do_not_inherit_the_socket() -> Result<(), Box<dyn std::error::Error>> {
    let (_console, qemu_end) = Console::socketpair(ConsoleConfig::default())?;
    let fd = qemu_end.as_raw_fd();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("test -e /proc/self/fd/{fd}"))
        .status()
        .await?;
    assert_eq!(
        status.code(),
        Some(1),
        "fd {fd} leaked into an unrelated child"
    );
    Ok(())
}

#[tokio::test]
async fn connect_unix_waits_for_the_socket_to_appear() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("console.sock");
    let connect = Console::connect_unix(&path, ConsoleConfig::default(), LONG);
    let serve = async {
        // Poll the connector once so that its first attempt finds nothing.
        tokio::task::yield_now().await;
        let listener = UnixListener::bind(&path)?;
        let (mut stream, _) = listener.accept().await?;
        stream.write_all(b"login: ").await?;
        let mut typed = [0; 5];
        stream.read_exact(&mut typed).await?;
        std::io::Result::Ok(typed)
    };
    let (console, served) = tokio::join!(
        async {
            let console = connect.await?;
            console.expect("login: ", LONG).await?;
            console.send_line("root").await?;
            Ok::<_, Error>(console)
        },
        serve
    );
    console?;
    assert_eq!(&served?, b"root\n");
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn connect_unix_gives_up_after_its_timeout() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("never.sock");
    let error = Console::connect_unix(&path, ConsoleConfig::default(), Duration::from_secs(2))
        .await
        .err()
        .ok_or("connected")?;
    let Error::ConnectTimeout {
        ref target, waited, ..
    } = error
    else {
        return Err(format!("not a connect timeout: {error}").into());
    };
    assert!(target.ends_with("never.sock"));
    assert!(waited <= Duration::from_secs(2), "{waited:?}");
    assert!(
        error.to_string().contains("did not accept a connection"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn connect_tcp_attaches() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (console, accepted) = tokio::join!(
        Console::connect_tcp(addr, ConsoleConfig::default(), LONG),
        listener.accept()
    );
    let (console, (mut stream, _)) = (console?, accepted?);
    stream.write_all(b"# ").await?;
    console.expect("# ", LONG).await?;
    drop(stream);
    console.expect_eof(LONG).await?;
    Ok(())
}
