//! Identity, display, boot, clock, firmware and diagnostics options.

use std::path::PathBuf;

keyval_option! {
    /// `-name`: the guest's name (QMP `query-name`, window title, logs).
    Name { option: "-name", implied: Some("guest") }
    fields {
        /// The name.
        guest: String [impl Into<String>] = "guest";
        /// The host process name.
        process: String [impl Into<String>] = "process";
        /// Name QEMU's threads after what they do.
        debug_threads: bool [bool] = "debug-threads";
    }
    lists {}
}

impl Name {
    /// The guest name `guest`.
    pub fn new(guest: impl Into<String>) -> Self {
        Self::default().guest(guest)
    }
}

keyval_option! {
    /// `-display`: the display back end (`none`, `gtk`, `vnc`, …).
    Display { option: "-display", implied: Some("type") }
    fields {
        /// The display type.
        kind: String [impl Into<String>] = "type";
    }
    lists {}
}

impl Display {
    /// A display of type `kind`.
    pub fn new(kind: impl Into<String>) -> Self {
        Self::default().kind(kind)
    }
    /// No display at all.
    pub fn none() -> Self {
        Self::new("none")
    }
}

keyval_option! {
    /// `-boot`: boot order and menu.
    Boot { option: "-boot", implied: Some("order") }
    fields {
        /// Drive letters in order, e.g. `cd`.
        order: String [impl Into<String>] = "order";
        /// Order for the first boot only.
        once: String [impl Into<String>] = "once";
        /// Show a boot menu.
        menu: bool [bool] = "menu";
        /// Splash picture.
        splash: PathBuf [impl Into<PathBuf>] = "splash";
        /// Splash time in ms.
        splash_time: u32 [u32] = "splash-time";
        /// Reboot after this many ms when no boot device is found (-1: never).
        reboot_timeout: i64 [i64] = "reboot-timeout";
        /// Only boot from the listed devices.
        strict: bool [bool] = "strict";
    }
    lists {}
}

keyval_option! {
    /// `-rtc`: the real-time clock.
    Rtc { option: "-rtc", implied: None }
    fields {
        /// `utc`, `localtime` or a start date `2006-06-17T16:01:21`.
        base: String [impl Into<String>] = "base";
        /// `host`, `rt` or `vm`.
        clock: String [impl Into<String>] = "clock";
        /// `none` or `slew`.
        driftfix: String [impl Into<String>] = "driftfix";
    }
    lists {}
}

keyval_option! {
    /// `-fw_cfg`: a firmware configuration item.
    FwCfg { option: "-fw_cfg", implied: Some("name") }
    fields {
        /// The item's name, e.g. `opt/org.example/key`.
        name: String [impl Into<String>] = "name";
        /// Content from a file.
        file: PathBuf [impl Into<PathBuf>] = "file";
        /// Content as a string.
        string: String [impl Into<String>] = "string";
    }
    lists {}
}

impl FwCfg {
    /// The item `name` with the content `string`.
    pub fn with_string(name: impl Into<String>, string: impl Into<String>) -> Self {
        Self::default().name(name).string(string)
    }
    /// The item `name` with the content of `file`.
    pub fn with_file(name: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Self::default().name(name).file(file)
    }
}

keyval_option! {
    /// `-add-fd`: put an inherited descriptor into an fd set.
    AddFd { option: "-add-fd", implied: None }
    fields {
        /// The descriptor QEMU inherits.
        fd: i32 [i32] = "fd";
        /// The fd set id (`/dev/fdset/SET`).
        set: i64 [i64] = "set";
        /// A free-form note shown by `query-fdsets`.
        opaque: String [impl Into<String>] = "opaque";
    }
    lists {}
}

impl AddFd {
    /// Descriptor `fd` into set `set`.
    pub fn new(fd: i32, set: i64) -> Self {
        Self::default().fd(fd).set(set)
    }
}

keyval_option! {
    /// `-trace`: enable trace events.
    Trace { option: "-trace", implied: Some("enable") }
    fields {
        /// An event name pattern.
        enable: String [impl Into<String>] = "enable";
        /// A file listing events.
        events: PathBuf [impl Into<PathBuf>] = "events";
        /// The trace output file.
        file: PathBuf [impl Into<PathBuf>] = "file";
    }
    lists {}
}

impl Trace {
    /// Events matching `pattern`.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self::default().enable(pattern)
    }
}

keyval_option! {
    /// `-msg`: the format of QEMU's error messages.
    Msg { option: "-msg", implied: None }
    fields {
        /// Prefix messages with a timestamp.
        timestamp: bool [bool] = "timestamp";
        /// Prefix messages with the guest name.
        guest_name: bool [bool] = "guest-name";
    }
    lists {}
}
