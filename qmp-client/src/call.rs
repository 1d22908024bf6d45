//! One way to run a command: [`Client::call`] builds a [`Call`] (timeout,
//! out of band, file descriptors) for a typed [`Command`] or a [`Raw`] one,
//! and awaiting it runs it.

use std::future::{Future, IntoFuture};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::time::Duration;

use qmp_proto::{Command, Greeting, JsonObject, Request};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::client::Client;
use crate::connection::Returned;
use crate::error::Error;
use crate::version_check;

/// What [`Client::call`] runs: any typed [`Command`] (see
/// [`qmp_proto::commands`]) or a [`Raw`] command.
pub trait Invoke: sealed::Sealed + Send {
    /// What the call returns: the command's typed output, or the raw
    /// `return` value.
    type Output: Send;

    /// The command's wire name.
    fn name(&self) -> &str;

    /// Refuses, before anything is sent, what the connected QEMU cannot
    /// run. The default accepts everything.
    fn check(&self, greeting: &Greeting) -> Result<(), Error> {
        let _ = greeting;
        Ok(())
    }

    /// Turns QEMU's error reply into this command's error. The default
    /// keeps it.
    fn reply_error(error: Error, greeting: &Greeting) -> Error {
        let _ = greeting;
        error
    }

    /// The request to send (without an id; the connection sets it).
    fn into_request(self) -> Result<Request, Error>;

    /// Reads QEMU's `return` value.
    fn parse(ret: Value) -> Result<Self::Output, Error>;

    /// Whether the call wants QEMU's `return` value as JSON text
    /// ([`Invoke::parse_text`]) rather than as a `Value`. The default does
    /// not.
    fn wants_text(&self) -> bool {
        false
    }

    /// Reads QEMU's `return` value from its JSON text; only a call that
    /// [wants text](Invoke::wants_text) is given text. The default builds
    /// the `Value` and reads that.
    // Owned, so that `RawText` hands QEMU's text on without a copy.
    #[allow(clippy::boxed_local)]
    fn parse_text(ret: Box<RawValue>) -> Result<Self::Output, Error> {
        let value = serde_json::from_str(ret.get()).map_err(|source| Error::Decode {
            command: String::from("a command read as JSON text"),
            source,
        })?;
        Self::parse(value)
    }
}

mod sealed {
    pub trait Sealed {}
    impl<C: qmp_proto::Command> Sealed for C {}
    impl Sealed for super::Raw {}
    impl Sealed for super::RawText {}
}

impl<C: Command + Send> Invoke for C
where
    C::Output: Send,
{
    type Output = C::Output;

    fn name(&self) -> &str {
        C::NAME
    }

    /// A typed command the connected QEMU is known to lack (or an argument
    /// or value it lacks) is refused before sending.
    fn check(&self, greeting: &Greeting) -> Result<(), Error> {
        version_check::check(self, greeting)
    }

    /// `CommandNotFound` for a typed command names the connected version.
    fn reply_error(error: Error, greeting: &Greeting) -> Error {
        version_check::name_version::<C>(error, greeting)
    }

    fn into_request(self) -> Result<Request, Error> {
        self.to_request().map_err(|source| Error::Arguments {
            command: C::NAME.to_owned(),
            source,
        })
    }

    fn parse(ret: Value) -> Result<C::Output, Error> {
        C::parse_output(ret).map_err(|source| Error::Decode {
            command: C::NAME.to_owned(),
            source,
        })
    }
}

/// A command given by name with JSON arguments; the call returns QEMU's
/// raw `return` value.
///
/// ```no_run
/// # async fn demo(client: qmp_client::Client) -> Result<(), qmp_client::Error> {
/// use qmp_client::Raw;
/// use serde_json::json;
///
/// client.call(Raw::new("stop")).await?;
/// // Arguments as people write them; `conv_keys` turns `_` into `-` in
/// // their names, as QEMUMachine's `conv_keys=True` does.
/// let add = Raw::new("device_add")
///     .args(json!({"driver": "virtio-blk-pci", "id": "disk1", "drive": "d1"}));
/// client.call(add).await?;
/// let set = Raw::new("migrate-set-parameters")
///     .args(json!({"max_bandwidth": 1_000_000}))
///     .conv_keys();
/// client.call(set).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Raw {
    name: String,
    arguments: Result<Option<JsonObject>, &'static str>,
    conv_keys: bool,
}

impl Raw {
    /// The command `name`, without arguments.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            arguments: Ok(None),
            conv_keys: false,
        }
    }

    /// Sets the arguments: anything that serialises to a JSON object (a
    /// `json!({..})` value, a [`JsonObject`], a struct), or to `null` or
    /// `None` for none. Anything else makes the call fail with
    /// [`Error::RawArguments`] before anything is sent.
    pub fn args(mut self, arguments: impl Serialize) -> Self {
        self.arguments = match serde_json::to_value(arguments) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(Value::Null) => Ok(None),
            Ok(other) => Err(kind(&other)),
            Err(_) => Err("a value that does not serialise to JSON"),
        };
        self
    }

    /// Turns `_` into `-` in the argument names (the top-level keys, as
    /// QEMUMachine's `conv_keys`), so Rust-style names can be written.
    pub fn conv_keys(mut self) -> Self {
        self.conv_keys = true;
        self
    }

    /// The same command, whose call returns QEMU's `return` value as the
    /// JSON text QEMU wrote instead of a [`Value`]: nothing is parsed into
    /// a tree, so a large reply costs little more than its bytes. For
    /// replies you store, forward or decode your own way.
    ///
    /// ```no_run
    /// # async fn demo(client: qmp_client::Client) -> Result<(), qmp_client::Error> {
    /// use qmp_client::Raw;
    ///
    /// let schema = client.call(Raw::new("query-qmp-schema").text()).await?;
    /// std::fs::write("schema.json", schema.get()).ok();
    /// # Ok(()) }
    /// ```
    pub fn text(self) -> RawText {
        RawText { raw: self }
    }
}

/// A [`Raw`] command whose call returns QEMU's `return` value as JSON text
/// ([`RawValue`], from [`Raw::text`]).
///
/// The text is QEMU's own for a success reply of the usual shape
/// (`return`, and the `id` when the command was sent with one); a reply of
/// any other shape is read as usual and its value written back out.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct RawText {
    raw: Raw,
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Invoke for Raw {
    type Output = Value;

    fn name(&self) -> &str {
        &self.name
    }

    fn into_request(self) -> Result<Request, Error> {
        let arguments = self.arguments.map_err(|found| Error::RawArguments {
            command: self.name.clone(),
            found,
        })?;
        let request = Request::new(self.name);
        Ok(match arguments {
            Some(arguments) if self.conv_keys => request.with_arguments(
                arguments
                    .into_iter()
                    .map(|(key, value)| (key.replace('_', "-"), value))
                    .collect(),
            ),
            Some(arguments) => request.with_arguments(arguments),
            None => request,
        })
    }

    fn parse(ret: Value) -> Result<Value, Error> {
        Ok(ret)
    }
}

impl Invoke for RawText {
    type Output = Box<RawValue>;

    fn name(&self) -> &str {
        self.raw.name()
    }

    fn into_request(self) -> Result<Request, Error> {
        self.raw.into_request()
    }

    fn parse(ret: Value) -> Result<Box<RawValue>, Error> {
        // Writing a Value out cannot fail (its keys are strings).
        serde_json::value::to_raw_value(&ret).map_err(|source| Error::Decode {
            command: String::from("a command read as JSON text"),
            source,
        })
    }

    fn wants_text(&self) -> bool {
        true
    }

    fn parse_text(ret: Box<RawValue>) -> Result<Box<RawValue>, Error> {
        Ok(ret)
    }
}

/// A command about to run, from [`Client::call`]: set a timeout, out-of-band
/// execution or file descriptors, then `.await` it.
///
/// ```no_run
/// # async fn demo(client: qmp_client::Client, fd: std::os::fd::OwnedFd) -> Result<(), qmp_client::Error> {
/// use std::time::Duration;
/// use qmp_client::Raw;
/// use qmp_proto::commands::{AddFd, QueryStatus};
///
/// let status = client.call(QueryStatus).timeout(Duration::from_secs(1)).await?;
/// client.call(Raw::new("migrate_cancel")).oob().await?;
/// let added = client.call(AddFd::new()).fds([fd]).await?;
/// # Ok(()) }
/// ```
///
/// # Cancel safety
///
/// The command is handed to the connection when the future is first
/// polled. Dropped (or timed out) before its first byte is written, it is
/// never sent; once its bytes are going out QEMU runs it, and its reply is
/// discarded when it comes.
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<'c, C> {
    client: &'c Client,
    command: C,
    timeout: Option<Duration>,
    oob: bool,
    fds: Vec<OwnedFd>,
}

impl<'c, C: Invoke> Call<'c, C> {
    pub(crate) fn new(client: &'c Client, command: C, timeout: Option<Duration>) -> Self {
        Self {
            client,
            command,
            timeout,
            oob: false,
            fds: Vec::new(),
        }
    }

    /// How long to wait for the reply (`None`: as long as the connection
    /// lives), instead of [`Config::command_timeout`](crate::Config::command_timeout).
    pub fn timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.timeout = timeout.into();
        self
    }

    /// Runs the command out of band (`exec-oob`): it does not queue behind
    /// in-band commands. Needs [`Config::oob`](crate::Config::oob) and a
    /// QEMU offering it, else [`Error::OobNotNegotiated`].
    pub fn oob(mut self) -> Self {
        self.oob = true;
        self
    }

    /// Attaches file descriptors to the command's own bytes (SCM_RIGHTS),
    /// for `getfd`, `add-fd` and the like. Needs a transport that carries
    /// them ([`Transport`](crate::Transport)), else
    /// [`Error::FdPassingUnsupported`] before anything is sent. The fds are
    /// closed here once sent; QEMU holds duplicates.
    pub fn fds(mut self, fds: impl IntoIterator<Item = OwnedFd>) -> Self {
        self.fds.extend(fds);
        self
    }

    async fn run(self) -> Result<C::Output, Error> {
        let Call {
            client,
            command,
            timeout,
            oob,
            fds,
        } = self;
        command.check(client.greeting())?;
        let text = command.wants_text();
        let mut request = command.into_request()?;
        if oob {
            request = request.oob();
        }
        let returned = client
            .send(request, fds, timeout, text)
            .await
            .map_err(|error| C::reply_error(error, client.greeting()))?;
        match returned {
            Returned::Value(value) => C::parse(value),
            Returned::Text(text) => C::parse_text(text),
        }
    }
}

impl<'c, C> IntoFuture for Call<'c, C>
where
    C: Invoke + 'c,
{
    type Output = Result<C::Output, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'c>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}
