//! Which cargo feature compiles each generated item.
//!
//! A user who sends three commands should not compile 235 of them. Each
//! command sits behind the feature of its QAPI module — the QEMU schema
//! file that defines it (`block-core`, `migration`, …), recorded in
//! `qmp-proto/tests/fixtures/qapi-modules.tsv` — and each type behind the
//! features of the commands that use it. What the hand-written layer
//! re-exports ([`ALWAYS`]) and every event are always compiled, and so is
//! every type they use.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::path::Path;

use super::model::{Model, named_in};
use crate::Result;

/// The feature that turns every module on.
pub(crate) const FULL: &str = "full";

/// Commands `qmp_proto::commands` re-exports: compiled whatever the
/// features. A command missing here fails `cargo build -p qmp-proto`.
const ALWAYS: &[&str] = &[
    "add-fd",
    "blockdev-del",
    "blockdev-mirror",
    "chardev-remove",
    "closefd",
    "cont",
    "device_del",
    "getfd",
    "human-monitor-command",
    "job-cancel",
    "job-complete",
    "job-dismiss",
    "migrate",
    "migrate-incoming",
    "netdev_del",
    "qom-get",
    "qom-list",
    "qom-set",
    "query-commands",
    "query-fdsets",
    "query-jobs",
    "query-kvm",
    "query-migrate",
    "query-name",
    "query-status",
    "quit",
    "remove-fd",
    "screendump",
    "stop",
    "system_powerdown",
    "system_reset",
];

/// Types the hand-written layer names that no command in [`ALWAYS`] uses.
const ALWAYS_TYPES: &[&str] = &["ChardevReturn", "ImageFormat"];

/// The features of every command and type: `None` means always compiled.
pub(crate) struct Gates {
    commands: BTreeMap<String, Option<String>>,
    types: BTreeMap<String, Option<BTreeSet<String>>>,
    /// Every module feature some item needs.
    pub(crate) features: BTreeSet<String>,
}

impl Gates {
    pub(crate) fn build(model: &Model, modules: &HashMap<String, String>) -> Result<Self> {
        let mut commands = BTreeMap::new();
        // Per type, the features of what reaches it; `None` once something
        // always compiled does.
        let mut types: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
        let mut features = BTreeSet::new();
        let mut reach = |roots: Vec<String>, feature: Option<&String>| {
            let mut queue = VecDeque::from(roots);
            while let Some(name) = queue.pop_front() {
                let Some(def) = model.types.get(&name) else {
                    continue;
                };
                let gate = types.entry(name).or_insert_with(|| Some(BTreeSet::new()));
                let grew = match (gate, feature) {
                    (None, _) => false,
                    (gate @ Some(_), None) => {
                        *gate = None;
                        true
                    }
                    (Some(set), Some(feature)) => set.insert(feature.clone()),
                };
                if grew {
                    queue.extend(def.references());
                }
            }
        };
        reach(ALWAYS_TYPES.iter().map(|&t| t.to_owned()).collect(), None);
        for event in model.events.values() {
            reach(event.data.iter().cloned().collect(), None);
        }
        for (wire, command) in &model.commands {
            let feature = if ALWAYS.contains(&wire.as_str()) {
                None
            } else {
                let module = modules.get(wire).ok_or_else(|| {
                    format!(
                        "qapi-modules.tsv has no module for the command `{wire}`: add the \
                         QEMU qapi/*.json file that defines it"
                    )
                })?;
                features.insert(module.clone());
                Some(module.clone())
            };
            let mut roots: Vec<String> = command.args.iter().cloned().collect();
            named_in(&command.ret, &mut roots);
            reach(roots, feature.as_ref());
            commands.insert(wire.clone(), feature);
        }
        for name in ALWAYS.iter().chain(ALWAYS_TYPES) {
            if !model.commands.contains_key(*name) && !model.types.contains_key(*name) {
                return Err(format!("gates.rs names `{name}`, which the schemas lack"));
            }
        }
        Ok(Self {
            commands,
            types,
            features,
        })
    }

    /// The feature a command needs, `None` when it is always compiled.
    pub(crate) fn command(&self, wire: &str) -> Option<BTreeSet<String>> {
        self.commands
            .get(wire)
            .cloned()
            .flatten()
            .map(|feature| BTreeSet::from([feature]))
    }

    /// The features any of which compiles a type, `None` when it always is.
    pub(crate) fn type_features(&self, name: &str) -> Option<BTreeSet<String>> {
        self.types.get(name).cloned().flatten()
    }
}

/// `qapi-modules.tsv`: `kind<TAB>name<TAB>module` lines; the commands'.
pub(crate) fn load_modules(path: &Path) -> Result<HashMap<String, String>> {
    let text = fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let mut modules = HashMap::new();
    for (number, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.split('\t').collect::<Vec<_>>()[..] {
            ["command", name, module] => {
                modules.insert(name.to_owned(), module.to_owned());
            }
            ["event", _, _] => {}
            _ => {
                return Err(format!(
                    "{}:{}: expected `command|event<TAB>name<TAB>module`, got {line:?}",
                    path.display(),
                    number + 1
                ));
            }
        }
    }
    Ok(modules)
}

/// Puts `#[cfg(…)]` on every top-level item of `text`, and says so in the
/// docs of its type.
pub(crate) fn gate(text: &str, features: &BTreeSet<String>) -> String {
    let names: Vec<String> = features.iter().map(|f| format!("`{f}`")).collect();
    let doc = match &names[..] {
        [one] => format!("Needs the cargo feature {one} (or `{FULL}`)."),
        _ => format!(
            "Needs one of the cargo features {} (or `{FULL}`).",
            names.join(", ")
        ),
    };
    let conditions: Vec<String> = features
        .iter()
        .map(|f| format!("feature = \"{f}\""))
        .collect();
    let cfg = match &conditions[..] {
        [one] => format!("#[cfg({one})]"),
        _ => format!("#[cfg(any({}))]", conditions.join(", ")),
    };
    let mut out = String::with_capacity(text.len() + 256);
    // The note ends the item's docs, before its `#[derive]` if it has one.
    let mut noted = false;
    for line in text.lines() {
        if line.starts_with("#[derive") && !noted {
            out.push_str(&format!("///\n/// {doc}\n"));
            noted = true;
        }
        if ["pub struct ", "pub enum ", "pub type "]
            .iter()
            .any(|item| line.starts_with(item))
        {
            if !noted {
                out.push_str(&format!("///\n/// {doc}\n"));
            }
            out.push_str(&cfg);
            out.push('\n');
            noted = false;
        } else if line.starts_with("impl") || line.starts_with("qapi_enum!") {
            out.push_str(&cfg);
            out.push('\n');
        } else if line.starts_with("    pub enum ") {
            // Inside `qapi_enum!`, whose call carries the `cfg`.
            out.push_str(&format!("    ///\n    /// {doc}\n"));
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::workspace_root;
    use crate::codegen::schema;

    fn gates() -> Gates {
        let fixtures = workspace_root().join("qmp-proto/tests/fixtures");
        let built = schema::load_all(&fixtures)
            .and_then(|schemas| Model::build(&schemas))
            .and_then(|model| {
                let modules = load_modules(&fixtures.join("qapi-modules.tsv"))?;
                Gates::build(&model, &modules)
            });
        match built {
            Ok(gates) => gates,
            Err(error) => panic!("{error}"),
        }
    }

    fn set(features: &[&str]) -> Option<BTreeSet<String>> {
        Some(features.iter().map(|&f| f.to_owned()).collect())
    }

    #[test]
    fn a_command_needs_its_module_and_what_the_hand_written_layer_uses_needs_nothing() {
        let gates = gates();
        assert_eq!(
            gates.command("query-cpu-model-expansion"),
            set(&["machine-target"])
        );
        assert_eq!(gates.command("query-vnc"), set(&["ui"]));
        assert_eq!(gates.command("query-status"), None);
        assert_eq!(gates.command("migrate"), None);
        assert!(
            gates.features.contains("block-core"),
            "{:?}",
            gates.features
        );
    }

    #[test]
    fn a_type_needs_any_feature_of_the_commands_that_use_it() {
        let gates = gates();
        assert_eq!(
            gates.type_features("CpuModelInfo"),
            set(&["machine-target"])
        );
        // What an always-compiled command or an event uses is always there.
        assert_eq!(gates.type_features("StatusInfo"), None);
        assert_eq!(gates.type_features("RunState"), None);
        assert_eq!(gates.type_features("ImageFormat"), None);
        // `blockdev-snapshot-sync` and `transaction` share their arguments.
        let shared = gates.type_features("BlockdevSnapshotSyncArguments");
        assert!(
            matches!(&shared, Some(f) if f.contains("block-core") && f.contains("transaction")),
            "{shared:?}"
        );
    }

    #[test]
    fn gating_marks_every_item_and_says_so_in_the_type_docs() {
        let text = "/// A thing.\n#[derive(Debug)]\npub struct A {\npub x: i64,\n}\n\
                    impl A {\nfn f() {}\n}\nqapi_enum! {\n    /// E.\n    pub enum E {\n    }\n}\n";
        let gated = gate(text, &BTreeSet::from(["ui".to_owned(), "qom".to_owned()]));
        let cfg = "#[cfg(any(feature = \"qom\", feature = \"ui\"))]";
        assert_eq!(gated.matches(cfg).count(), 3, "{gated}");
        let note = "/// Needs one of the cargo features `qom`, `ui` (or `full`).";
        assert_eq!(gated.matches(note).count(), 2, "{gated}");
        assert!(
            gated.starts_with(&format!(
                "/// A thing.\n///\n{note}\n#[derive(Debug)]\n{cfg}\n"
            )),
            "{gated}"
        );
    }
}
