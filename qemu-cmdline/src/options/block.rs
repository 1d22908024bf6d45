//! Block devices: `-drive`, `-blockdev`.

use std::path::PathBuf;

keyval_option! {
    /// `-drive`: a block backend and (unless `if=none`) its device.
    ///
    /// The file name has its commas doubled, so a file literally named
    /// `a,format=raw,b.img` stays one file name:
    /// ```
    /// use qemu_cmdline::Drive;
    /// let d = Drive::new("a,format=raw,b.img").format("qcow2").interface("none").id("d0");
    /// assert_eq!(d.render().unwrap(), "file=a,,format=raw,,b.img,format=qcow2,if=none,id=d0");
    /// ```
    Drive { option: "-drive", implied: None }
    fields {
        /// The image file.
        file: PathBuf [impl Into<PathBuf>] = "file";
        /// Image format, e.g. `raw`, `qcow2`.
        format: String [impl Into<String>] = "format";
        /// Interface: `none`, `ide`, `virtio`, `scsi`, …
        interface: String [impl Into<String>] = "if";
        /// The id (the block backend's name when `if=none`).
        id: String [impl Into<String>] = "id";
        /// `disk` or `cdrom`.
        media: String [impl Into<String>] = "media";
        /// Read-only.
        readonly: bool [bool] = "readonly";
        /// Write to a temporary overlay.
        snapshot: bool [bool] = "snapshot";
        /// Cache mode, e.g. `none`, `writeback`, `unsafe`.
        cache: String [impl Into<String>] = "cache";
        /// Index on its interface.
        index: u32 [u32] = "index";
    }
    lists {}
}

impl Drive {
    /// A drive backed by `file`.
    pub fn new(file: impl Into<PathBuf>) -> Self {
        Self::default().file(file)
    }
}

keyval_option! {
    /// `-blockdev`: one node of the block graph. Nested options use dotted
    /// keys, e.g. `.prop("file.filename", path)`.
    Blockdev { option: "-blockdev", implied: None }
    fields {
        /// The block driver, e.g. `file`, `raw`, `qcow2`, `null-co`.
        driver: String [impl Into<String>] = "driver";
        /// The node name.
        node_name: String [impl Into<String>] = "node-name";
        /// Read-only.
        read_only: bool [bool] = "read-only";
        /// The file name (protocol drivers such as `file`).
        filename: PathBuf [impl Into<PathBuf>] = "filename";
    }
    lists {}
}

impl Blockdev {
    /// A node of driver `driver` named `node_name`.
    pub fn new(driver: impl Into<String>, node_name: impl Into<String>) -> Self {
        Self::default().driver(driver).node_name(node_name)
    }
}
