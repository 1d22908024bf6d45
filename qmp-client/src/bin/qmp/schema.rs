//! The live schema (`query-qmp-schema`): commands, their argument types,
//! and the check that runs before a command is sent.

use std::collections::{BTreeMap, HashMap};

use qmp_client::{Client, JsonObject};
use serde::Deserialize;
use serde_json::Value;

use crate::failure::Failure;
use crate::suggest::{did_you_mean, similar};

/// Commands whose arguments the schema does not fully describe: QEMU
/// declares `device_add` with `'gen': false` and takes any device property,
/// but introspection shows only `driver`, `bus` and `id`.
const FREE_FORM_ARGUMENTS: [&str; 1] = ["device_add"];

/// One entry of `query-qmp-schema`, by `meta-type`. Type names other than
/// builtins are opaque numbers in the reply.
#[derive(Debug, Deserialize)]
#[serde(tag = "meta-type", rename_all = "kebab-case")]
enum Entry {
    Command {
        name: String,
        #[serde(rename = "arg-type")]
        arg_type: String,
        #[serde(rename = "ret-type")]
        ret_type: String,
    },
    Object {
        name: String,
        #[serde(default)]
        members: Vec<Member>,
        tag: Option<String>,
        #[serde(default)]
        variants: Vec<Variant>,
    },
    Enum {
        name: String,
        #[serde(default)]
        values: Vec<String>,
    },
    Array {
        name: String,
        #[serde(rename = "element-type")]
        element_type: String,
    },
    Alternate {
        name: String,
        members: Vec<AlternateMember>,
    },
    Builtin {
        name: String,
    },
    /// Events, and meta-types a later QEMU may add.
    #[serde(other)]
    Other,
}

/// A member of an object type.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Member {
    /// The member's name.
    pub(crate) name: String,
    /// Its type's name in the schema.
    #[serde(rename = "type")]
    pub(crate) type_name: String,
    /// Present (always `null`) when the member is optional.
    #[serde(default, deserialize_with = "present")]
    pub(crate) default: bool,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Value::deserialize(deserializer).map(|_| true)
}

/// One branch of a union.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Variant {
    /// The tag value that selects it.
    pub(crate) case: String,
    /// The object type of its members.
    #[serde(rename = "type")]
    pub(crate) type_name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct AlternateMember {
    #[serde(rename = "type")]
    type_name: String,
}

/// A type of the schema.
#[derive(Debug, Clone)]
pub(crate) enum Type {
    /// `str`, `int`, `bool`, `any`, ...
    Builtin(String),
    /// One of these strings.
    Enum(Vec<String>),
    /// A list of the named type.
    Array(String),
    /// An object, perhaps a union.
    Object {
        /// Its (base) members.
        members: Vec<Member>,
        /// The union's tag member.
        tag: Option<String>,
        /// The union's branches.
        variants: Vec<Variant>,
    },
    /// Any of the named types.
    Alternate(Vec<String>),
}

/// A command: its argument and return types.
#[derive(Debug, Clone)]
pub(crate) struct CommandInfo {
    /// The type of its arguments (an object).
    pub(crate) arg_type: String,
    /// The type of its `return` value.
    pub(crate) ret_type: String,
}

/// The commands and types of the connected QEMU.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    commands: BTreeMap<String, CommandInfo>,
    types: HashMap<String, Type>,
    /// Only command names are known (from `query-commands`).
    names_only: bool,
}

impl Schema {
    /// Runs `query-qmp-schema` and reads its reply.
    pub(crate) async fn fetch(client: &Client) -> Result<Schema, Failure> {
        let reply = client.execute_raw("query-qmp-schema", None).await?;
        Ok(Schema::from_reply(reply))
    }

    /// Only the command names (`query-commands`): enough to check a
    /// command without arguments, at a fraction of the cost (QEMU takes
    /// tens of milliseconds to produce the ~230 KB full schema).
    pub(crate) async fn fetch_names(client: &Client) -> Result<Schema, Failure> {
        let reply = client.execute_raw("query-commands", None).await?;
        let mut schema = Schema {
            names_only: true,
            ..Schema::default()
        };
        for entry in reply.as_array().into_iter().flatten() {
            if let Some(name) = entry.get("name").and_then(Value::as_str) {
                let info = CommandInfo {
                    arg_type: String::new(),
                    ret_type: String::new(),
                };
                schema.commands.insert(name.to_owned(), info);
            }
        }
        Ok(schema)
    }

    /// What checking a call needs: the names alone without arguments,
    /// the whole schema with them.
    pub(crate) async fn fetch_for(client: &Client, has_args: bool) -> Result<Schema, Failure> {
        if has_args {
            Schema::fetch(client).await
        } else {
            Schema::fetch_names(client).await
        }
    }

    /// Reads a `query-qmp-schema` return value; entries it cannot read are
    /// skipped (a later QEMU may add shapes).
    pub(crate) fn from_reply(reply: Value) -> Schema {
        let mut schema = Schema::default();
        let Value::Array(entries) = reply else {
            return schema;
        };
        for entry in entries {
            let Ok(entry) = serde_json::from_value::<Entry>(entry) else {
                continue;
            };
            let (name, kind) = match entry {
                Entry::Command {
                    name,
                    arg_type,
                    ret_type,
                } => {
                    schema
                        .commands
                        .insert(name, CommandInfo { arg_type, ret_type });
                    continue;
                }
                Entry::Object {
                    name,
                    members,
                    tag,
                    variants,
                } => (
                    name,
                    Type::Object {
                        members,
                        tag,
                        variants,
                    },
                ),
                Entry::Enum { name, values } => (name, Type::Enum(values)),
                Entry::Array { name, element_type } => (name, Type::Array(element_type)),
                Entry::Alternate { name, members } => (
                    name,
                    Type::Alternate(members.into_iter().map(|m| m.type_name).collect()),
                ),
                Entry::Builtin { name } => (name.clone(), Type::Builtin(name)),
                Entry::Other => continue,
            };
            schema.types.insert(name, kind);
        }
        schema
    }

    /// The command names, sorted.
    pub(crate) fn command_names(&self) -> impl Iterator<Item = &str> {
        self.commands.keys().map(String::as_str)
    }

    /// A command's argument and return types.
    pub(crate) fn command(&self, name: &str) -> Option<&CommandInfo> {
        self.commands.get(name)
    }

    /// A type by its schema name.
    pub(crate) fn type_named(&self, name: &str) -> Option<&Type> {
        self.types.get(name)
    }

    /// Every argument name `command` accepts: the members of its argument
    /// type and, for a union, of every branch. `None` for an unknown
    /// command.
    pub(crate) fn argument_names(&self, command: &str) -> Option<Vec<&str>> {
        let info = self.commands.get(command)?;
        let mut names = Vec::new();
        if let Some(Type::Object {
            members, variants, ..
        }) = self.types.get(&info.arg_type)
        {
            names.extend(members.iter().map(|m| m.name.as_str()));
            for variant in variants {
                if let Some(Type::Object { members, .. }) = self.types.get(&variant.type_name) {
                    names.extend(members.iter().map(|m| m.name.as_str()));
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        Some(names)
    }

    /// The error for a command this QEMU lacks, with the closest names.
    pub(crate) fn not_found(&self, command: &str) -> Failure {
        let hint = did_you_mean(&similar(command, self.command_names()));
        Failure::Qmp {
            class: "CommandNotFound".to_owned(),
            desc: format!("The command {command} has not been found in this QEMU's schema{hint}"),
        }
    }

    /// Refuses, before sending, a command this QEMU does not have or an
    /// argument none of its forms takes, saying what is close. An empty
    /// schema (QEMU refused `query-qmp-schema`) checks nothing.
    pub(crate) fn check(&self, command: &str, args: Option<&JsonObject>) -> Result<(), Failure> {
        if self.commands.is_empty() {
            return Ok(());
        }
        let Some(accepted) = self.argument_names(command) else {
            return Err(self.not_found(command));
        };
        if self.names_only || FREE_FORM_ARGUMENTS.contains(&command) {
            return Ok(());
        }
        for key in args.into_iter().flat_map(JsonObject::keys) {
            if !accepted.contains(&key.as_str()) {
                let hint = did_you_mean(&similar(key, accepted.iter().copied()));
                let hint = if hint.is_empty() && accepted.is_empty() {
                    format!("; `{command}` takes no arguments")
                } else {
                    hint
                };
                return Err(Failure::Qmp {
                    class: "GenericError".to_owned(),
                    desc: format!("Parameter '{key}' is unexpected for `{command}`{hint}"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn recorded(version: &str) -> Schema {
        let path = format!(
            "{}/../qmp-proto/tests/fixtures/qemu-{version}/query-qmp-schema.reply",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let reply: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        Schema::from_reply(reply.get("return").cloned().unwrap_or(Value::Null))
    }

    #[test]
    fn recorded_schemas_read_whole() {
        for version in ["7.2", "10.0"] {
            let schema = recorded(version);
            assert!(schema.command("query-status").is_some(), "{version}");
            let args = schema.argument_names("device_add");
            assert_eq!(args, Some(vec!["bus", "driver", "id"]), "{version}");
            // A union: base members and every branch's members.
            let args = schema.argument_names("blockdev-add").unwrap_or_default();
            for name in ["driver", "node-name", "filename", "file"] {
                assert!(args.contains(&name), "{version}: {name} not in {args:?}");
            }
        }
    }

    #[test]
    fn names_alone_check_commands_but_not_arguments() {
        let mut schema = Schema {
            names_only: true,
            ..Schema::default()
        };
        for name in ["query-status", "stop"] {
            let info = CommandInfo {
                arg_type: String::new(),
                ret_type: String::new(),
            };
            schema.commands.insert(name.to_owned(), info);
        }
        let got = schema.check("query-stauts", None);
        assert!(
            matches!(&got, Err(Failure::Qmp { desc, .. }) if desc.contains("`query-status`")),
            "{got:?}"
        );
        let args = json!({"anything": 1});
        let got = schema.check("stop", args.as_object());
        assert!(matches!(got, Ok(())), "{got:?}");
    }

    #[test]
    fn the_check_refuses_unknown_names_with_a_hint() {
        let schema = recorded("10.0");
        let got = schema.check("query-stauts", None);
        assert!(
            matches!(&got, Err(Failure::Qmp { class, desc })
                if class == "CommandNotFound" && desc.contains("`query-status`")),
            "{got:?}"
        );
        let args = json!({"node-name": "n0", "drvier": "file"});
        let got = schema.check("blockdev-add", args.as_object());
        assert!(
            matches!(&got, Err(Failure::Qmp { class, desc })
                if class == "GenericError" && desc.contains("'drvier'") && desc.contains("`driver`")),
            "{got:?}"
        );
        let args = json!({"x": 1});
        let got = schema.check("query-status", args.as_object());
        assert!(
            matches!(&got, Err(Failure::Qmp { desc, .. }) if desc.contains("takes no arguments")),
            "{got:?}"
        );
        // device_add takes any device property.
        let args = json!({"driver": "virtio-blk-pci", "drive": "n0"});
        let got = schema.check("device_add", args.as_object());
        assert!(matches!(got, Ok(())), "{got:?}");
        let got = Schema::default().check("anything", None);
        assert!(matches!(got, Ok(())), "{got:?}");
    }
}
