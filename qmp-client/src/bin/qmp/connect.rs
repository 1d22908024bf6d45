//! From the command line's target and timeouts to a connected client.

use std::net::SocketAddr;

use qmp_client::{Client, Config, Listener};

use crate::args::{Target, Timeouts};
use crate::failure::Failure;

/// The client settings the flags ask for.
pub(crate) fn config(timeouts: &Timeouts) -> Config {
    Config::default()
        .connect_timeout(timeouts.connect_timeout.0)
        .handshake_timeout(timeouts.handshake_timeout.0)
        .command_timeout(timeouts.command_timeout.0)
}

/// Connects (or waits for QEMU to connect) and negotiates.
pub(crate) async fn connect(target: &Target, config: &Config) -> Result<Client, Failure> {
    if let Some(address) = &target.listen {
        let listener = if address.parse::<SocketAddr>().is_ok() {
            Listener::bind_tcp(address.as_str()).await?
        } else {
            Listener::bind_unix(address)?
        };
        // The listener (and its socket file) goes once QEMU is connected.
        return Ok(listener.accept(config).await?);
    }
    if let Some(address) = &target.tcp {
        return Ok(Client::connect_tcp(address.as_str(), config).await?);
    }
    match &target.socket {
        Some(path) => Ok(Client::connect_unix(path, config).await?),
        None => Err(Failure::Usage(
            "no QMP monitor given: use -s PATH (or QMP_SOCKET), --tcp HOST:PORT or --listen PATH"
                .to_owned(),
        )),
    }
}
