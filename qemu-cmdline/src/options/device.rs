//! Devices and objects: `-device`, `-object`, `-global`.

keyval_option! {
    /// `-device`: a front-end device.
    ///
    /// ```
    /// use qemu_cmdline::Device;
    /// let d = Device::new("virtio-blk-pci").id("vd0").prop("drive", "d0");
    /// assert_eq!(d.render().unwrap(), "virtio-blk-pci,id=vd0,drive=d0");
    /// ```
    Device { option: "-device", implied: Some("driver") }
    fields {
        /// The device type, e.g. `virtio-blk-pci`.
        driver: String [impl Into<String>] = "driver";
        /// The device id (for `device_del`, `qom-get`, …).
        id: String [impl Into<String>] = "id";
        /// The bus to plug into, e.g. `pci.0`.
        bus: String [impl Into<String>] = "bus";
    }
    lists {}
}

impl Device {
    /// A device of type `driver`.
    pub fn new(driver: impl Into<String>) -> Self {
        Self::default().driver(driver)
    }
}

keyval_option! {
    /// `-object`: a QOM object (memory backends, secrets, RNG sources, …).
    Object { option: "-object", implied: Some("qom-type") }
    fields {
        /// The object type, e.g. `memory-backend-ram`.
        qom_type: String [impl Into<String>] = "qom-type";
        /// The object id.
        id: String [impl Into<String>] = "id";
    }
    lists {}
}

impl Object {
    /// An object of type `qom_type` with id `id`.
    pub fn new(qom_type: impl Into<String>, id: impl Into<String>) -> Self {
        Self::default().qom_type(qom_type).id(id)
    }
}

keyval_option! {
    /// `-global`: a default property value for every device of a type.
    Global { option: "-global", implied: None }
    fields {
        /// The device type.
        driver: String [impl Into<String>] = "driver";
        /// The property.
        property: String [impl Into<String>] = "property";
        /// Its value.
        value: String [impl Into<String>] = "value";
    }
    lists {}
}

impl Global {
    /// `driver.property=value` for every `driver` device.
    pub fn new(
        driver: impl Into<String>,
        property: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        Self::default()
            .driver(driver)
            .property(property)
            .value(value)
    }
}
