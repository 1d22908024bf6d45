//! Parsing an existing argv back into a typed `Cmdline`.

use std::ffi::{OsStr, OsString};

use crate::arg::{Arg, Kind, lookup};
use crate::{Cmdline, Error, os};

/// The option name of `arg` without its one or two leading dashes.
fn option_name(arg: &OsStr) -> Option<&str> {
    let text = arg.to_str()?;
    let name = text.strip_prefix("--").or_else(|| text.strip_prefix('-'))?;
    (!name.is_empty()).then_some(name)
}

fn looks_like_option(arg: &OsStr) -> bool {
    os::bytes(arg).first() == Some(&b'-')
}

impl Cmdline {
    /// Parses arguments (without the program) into typed options. Options
    /// without a typed form are kept as raw arguments, in order.
    ///
    /// ```
    /// use qemu_cmdline::{Arg, Cmdline};
    /// let cmd = Cmdline::parse_args(["-device", "virtio-blk-pci,drive=d0", "-S"]).unwrap();
    /// let Arg::Device(device) = &cmd.get_args()[0] else { panic!() };
    /// assert_eq!(device.driver.as_deref(), Some("virtio-blk-pci"));
    /// assert_eq!(cmd.get_args()[1], Arg::Paused);
    /// ```
    pub fn parse_args<I, S>(args: I) -> Result<Cmdline, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let mut cmdline = Cmdline::new();
        let mut index = 0;
        while let Some(arg) = args.get(index) {
            index += 1;
            let Some(name) = option_name(arg) else {
                cmdline.push(Arg::Raw(arg.clone()));
                continue;
            };
            match lookup(name) {
                Kind::Flag(typed) => {
                    cmdline.push(*typed);
                }
                Kind::Value(parse) => {
                    let value = args.get(index).ok_or_else(|| Error::MissingArgument {
                        option: arg.to_string_lossy().into_owned(),
                    })?;
                    index += 1;
                    cmdline.push(parse(&format!("-{name}"), value)?);
                }
                Kind::RawFlag => {
                    cmdline.push(Arg::Raw(arg.clone()));
                }
                Kind::RawOption => {
                    cmdline.push(Arg::Raw(arg.clone()));
                    if let Some(value) = args.get(index).filter(|v| !looks_like_option(v)) {
                        cmdline.push(Arg::Raw(value.clone()));
                        index += 1;
                    }
                }
            }
        }
        Ok(cmdline)
    }

    /// Parses a full argv: the program, then its arguments.
    pub fn parse_argv<I, S>(argv: I) -> Result<Cmdline, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut argv = argv.into_iter().map(Into::into);
        let program = argv.next();
        let mut cmdline = Cmdline::parse_args(argv)?;
        if let Some(program) = program {
            cmdline.program(program);
        }
        Ok(cmdline)
    }
}
