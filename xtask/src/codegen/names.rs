//! Rust names for QAPI names, and the few type names chosen by hand.

/// Type names chosen by hand, by naming key (see `model.rs`): the names the
/// hand-written layer already used and the QAPI names people know, where
/// the name derived from the first use would be clumsy. A key names the
/// type it reaches in every version, so the choice is stable.
const CHOSEN: &[(&str, &str)] = &[
    ("ret:query-status", "StatusInfo"),
    ("StatusInfo.status", "RunState"),
    ("Shutdown.reason", "ShutdownCause"),
    ("BlockInfo.inserted", "BlockDeviceInfo"),
    ("BlockDeviceInfo.image", "ImageInfo"),
    ("BlockDeviceInfo.cache", "BlockdevCacheInfo"),
    ("ret:query-jobs", "JobInfo"),
    ("JobInfo.type", "JobType"),
    ("JobInfo.status", "JobStatus"),
    ("BlockdevMirror.sync", "MirrorSyncMode"),
    ("BlockdevMirror.on-source-error", "BlockdevOnError"),
    ("BlockdevMirror.copy-mode", "MirrorCopyMode"),
    ("ret:query-migrate", "MigrationInfo"),
    ("MigrationInfo.status", "MigrationStatus"),
    ("MigrationInfo.ram", "MigrationStats"),
    (
        "MigrateSetCapabilities.capabilities",
        "MigrationCapabilityStatus",
    ),
    (
        "MigrationCapabilityStatus.capability",
        "MigrationCapability",
    ),
    ("ret:query-cpus-fast", "CpuInfoFast"),
    ("ret:query-commands", "CommandInfo"),
    ("ret:query-fdsets", "FdsetInfo"),
    ("FdsetInfo.fds", "FdsetFdInfo"),
    ("ret:add-fd", "AddFdInfo"),
    ("ret:qom-list", "ObjectPropertyInfo"),
    ("ret:chardev-add", "ChardevReturn"),
    ("ChardevAdd.backend", "ChardevBackend"),
    ("Screendump.format", "ImageFormat"),
    ("cmd:blockdev-add", "BlockdevOptions"),
    ("BlockdevOptions.driver", "BlockdevDriver"),
    ("cmd:block-dirty-bitmap-clear", "BlockDirtyBitmap"),
    ("QmpCapabilities.enable", "QmpCapability"),
    ("ret:query-cpu-model-expansion", "CpuModelExpansionInfo"),
    ("ret:query-machines", "MachineInfo"),
    ("ret:query-cpu-definitions", "CpuDefinitionInfo"),
    ("ret:query-chardev", "ChardevInfo"),
    ("ret:query-pci", "PciInfo"),
    ("ret:query-memory-devices", "MemoryDeviceInfo"),
    ("ret:query-hotpluggable-cpus", "HotpluggableCpu"),
    ("ret:query-block-jobs", "BlockJobInfo"),
    ("ret:query-blockstats", "BlockStats"),
    ("ret:query-rocker", "RockerSwitch"),
    ("ret:query-migrate-parameters", "MigrationParameters"),
    (
        "ret:query-migrate-capabilities",
        "MigrationCapabilityStatus",
    ),
    ("ret:qom-list-types", "ObjectTypeInfo"),
    ("ret:query-display-options", "DisplayOptions"),
    ("ret:query-target", "TargetInfo"),
    ("ret:query-iothreads", "IOThreadInfo"),
    ("ret:query-vnc", "VncInfo"),
    ("ret:query-spice", "SpiceInfo"),
    ("ret:query-mice", "MouseInfo"),
    ("ret:query-balloon", "BalloonInfo"),
    ("ret:query-memdev", "Memdev"),
    ("ret:query-acpi-ospm-status", "AcpiOstInfo"),
    ("ret:query-tpm", "TpmInfo"),
    ("ret:query-uuid", "UuidInfo"),
    ("ret:query-events", "EventInfo"),
    ("ret:x-query-irq", "HumanReadableText"),
    ("ret:query-qmp-schema", "SchemaInfo"),
    ("BlockdevOptions/null-co", "BlockdevOptionsNull"),
    ("SchemaInfo.meta-type", "SchemaMetaType"),
    ("InputSendEvent.events", "InputEvent"),
    ("InputEvent/key", "InputKeyEventWrapper"),
    ("InputKeyEventWrapper.data", "InputKeyEvent"),
    ("InputKeyEvent.key", "KeyValue"),
    ("KeyValue/qcode", "QKeyCodeWrapper"),
    ("QKeyCodeWrapper.data", "QKeyCode"),
    ("Transaction.actions", "TransactionAction"),
    (
        "MigrateSetParameters.multifd-compression",
        "MultiFdCompression",
    ),
    ("BlockdevOptionsFile.aio", "BlockdevAioOptions"),
    ("BlockdevOptions.discard", "BlockdevDiscardOptions"),
    (
        "BlockdevOptions.detect-zeroes",
        "BlockdevDetectZeroesOptions",
    ),
    ("BlockdevOptions.cache", "BlockdevCacheOptions"),
    ("ImageInfo.format-specific", "ImageInfoSpecific"),
    ("BlockdevOptionsQcow2.file", "BlockdevRef"),
    ("BlockdevOptionsQcow2.backing", "BlockdevRefOrNull"),
    ("ChardevBackend.type", "ChardevBackendKind"),
    ("ret:query-cpu-model-baseline", "CpuModelBaselineInfo"),
    ("QueryCpuModelExpansion.model", "CpuModelInfo"),
    ("QueryCpuModelExpansion.type", "CpuModelExpansionType"),
];

/// The hand-chosen name for `key`, if any.
pub(crate) fn chosen(key: &str) -> Option<&'static str> {
    CHOSEN
        .iter()
        .find(|(chosen_key, _)| *chosen_key == key)
        .map(|(_, name)| *name)
}

/// `query-status`, `BLOCK_JOB_READY`, `tray_open`, `x86_64` → `QueryStatus`,
/// `BlockJobReady`, `TrayOpen`, `X86_64`: words split at `-`, `_` and `.`,
/// each capitalised; digits between words keep an underscore so `x86_64`
/// and `x8664` stay apart; a leading digit gets a `V`.
pub(crate) fn pascal(name: &str) -> String {
    let mut out = String::new();
    for word in name
        .split(['-', '_', '.', ':', '+'])
        .filter(|w| !w.is_empty())
    {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if first.is_ascii_digit() && out.ends_with(|c: char| c.is_ascii_digit()) {
                out.push('_');
            }
            out.extend(first.to_uppercase());
            out.extend(chars.flat_map(char::to_lowercase));
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

/// A member name as a Rust field: lower case, `-` and `.` become `_`,
/// `type` becomes `kind` (as in the hand-written types), other keywords
/// are raw identifiers.
pub(crate) fn field(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| match c {
            '-' | '.' | '+' | ':' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    match out.as_str() {
        "type" => "kind".to_owned(),
        "self" | "super" | "crate" => out + "_",
        word if KEYWORDS.contains(&word) => format!("r#{out}"),
        _ => out,
    }
}

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "typeof", "unsafe", "unsized", "use", "virtual",
    "where", "while", "yield",
];

/// `name`, or `name2`, `name3`, … — the first that `taken` refuses.
pub(crate) fn unique(name: String, taken: impl Fn(&str) -> bool) -> String {
    if !taken(&name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}{n}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases() {
        assert_eq!(pascal("query-status"), "QueryStatus");
        assert_eq!(pascal("BLOCK_JOB_READY"), "BlockJobReady");
        assert_eq!(pascal("x86_64"), "X86_64");
        assert_eq!(pascal("1"), "V1");
        assert_eq!(pascal("kp_0"), "Kp0");
        assert_eq!(field("node-name"), "node_name");
        assert_eq!(field("type"), "kind");
        assert_eq!(field("in"), "r#in");
        assert_eq!(unique("A".into(), |n| n == "A" || n == "A2"), "A3");
    }
}
