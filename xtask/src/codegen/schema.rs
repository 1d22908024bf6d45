//! Reading one QEMU version's recorded `query-qmp-schema` reply.
//!
//! The introspection names every type but the builtins with a number that
//! changes between versions, so nothing here is a name yet: the model
//! (`model.rs`) names types by where they are used.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Result;

/// A QEMU version as the fixtures directory names it (`qemu-10.0`).
pub(crate) type Release = (u32, u32);

/// One version's schema.
pub(crate) struct Schema {
    pub(crate) release: Release,
    entities: HashMap<String, Entity>,
    /// Command names, sorted.
    pub(crate) commands: Vec<String>,
    /// Event names, sorted.
    pub(crate) events: Vec<String>,
}

/// One entity of the introspection.
pub(crate) enum Entity {
    Command {
        arg: String,
        ret: String,
        features: Vec<String>,
    },
    Event {
        arg: String,
        features: Vec<String>,
    },
    Object {
        members: Vec<Member>,
        /// The tag member and the variants of a union.
        tag: Option<String>,
        variants: Vec<(String, String)>,
    },
    Enum {
        values: Vec<String>,
        /// Values with features (10.0 lists them per value).
        value_features: HashMap<String, Vec<String>>,
    },
    Array {
        element: String,
    },
    Alternate {
        branches: Vec<String>,
    },
    Builtin {
        json_type: String,
    },
}

/// A member of an object type.
pub(crate) struct Member {
    pub(crate) name: String,
    pub(crate) ty: String,
    pub(crate) optional: bool,
    pub(crate) features: Vec<String>,
}

/// Every `qemu-X.Y/query-qmp-schema.reply` under `fixtures`, oldest first.
pub(crate) fn load_all(fixtures: &Path) -> Result<Vec<Schema>> {
    let entries = fs::read_dir(fixtures)
        .map_err(|error| format!("cannot list {}: {error}", fixtures.display()))?;
    let mut found: Vec<(Release, PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|error| format!("cannot list {}: {error}", fixtures.display()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(release) = name.strip_prefix("qemu-").and_then(parse_release) {
            let reply = path.join("query-qmp-schema.reply");
            if reply.is_file() {
                found.push((release, reply));
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(format!(
            "no qemu-X.Y/query-qmp-schema.reply under {}",
            fixtures.display()
        ));
    }
    found
        .into_iter()
        .map(|(release, path)| {
            let text = fs::read_to_string(&path)
                .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
            Schema::parse(release, &text).map_err(|error| format!("{}: {error}", path.display()))
        })
        .collect()
}

fn parse_release(text: &str) -> Option<Release> {
    let (major, minor) = text.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

impl Schema {
    fn parse(release: Release, text: &str) -> Result<Self> {
        let reply: Value = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let list = reply
            .get("return")
            .and_then(Value::as_array)
            .ok_or("not a `return` array")?;
        let mut entities = HashMap::new();
        let mut commands = Vec::new();
        let mut events = Vec::new();
        for item in list {
            let name = text_of(item, "name")?;
            let entity = match text_of(item, "meta-type")?.as_str() {
                "command" => {
                    commands.push(name.clone());
                    Entity::Command {
                        arg: text_of(item, "arg-type")?,
                        ret: text_of(item, "ret-type")?,
                        features: strings(item.get("features")),
                    }
                }
                "event" => {
                    events.push(name.clone());
                    Entity::Event {
                        arg: text_of(item, "arg-type")?,
                        features: strings(item.get("features")),
                    }
                }
                "object" => Entity::Object {
                    members: members(item)?,
                    tag: item.get("tag").and_then(Value::as_str).map(str::to_owned),
                    variants: variants(item)?,
                },
                "enum" => Entity::Enum {
                    values: strings(item.get("values")),
                    value_features: value_features(item),
                },
                "array" => Entity::Array {
                    element: text_of(item, "element-type")?,
                },
                "alternate" => Entity::Alternate {
                    branches: item
                        .get("members")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|m| text_of(m, "type"))
                        .collect::<Result<_>>()?,
                },
                "builtin" => Entity::Builtin {
                    json_type: text_of(item, "json-type")?,
                },
                other => return Err(format!("{name}: unknown meta-type {other}")),
            };
            entities.insert(name, entity);
        }
        commands.sort();
        events.sort();
        Ok(Self {
            release,
            entities,
            commands,
            events,
        })
    }

    /// Every entity, in no particular order.
    pub(crate) fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.entities.values()
    }

    /// The entity called `name`.
    pub(crate) fn get(&self, name: &str) -> Result<&Entity> {
        self.entities
            .get(name)
            .ok_or_else(|| format!("QEMU {:?}: schema entity {name} is missing", self.release))
    }
}

fn text_of(item: &Value, key: &str) -> Result<String> {
    item.get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| format!("{item}: no string `{key}`"))
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn members(item: &Value) -> Result<Vec<Member>> {
    item.get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|member| {
            Ok(Member {
                name: text_of(member, "name")?,
                ty: text_of(member, "type")?,
                // Introspection marks optional members with `"default": null`.
                optional: member.get("default").is_some(),
                features: strings(member.get("features")),
            })
        })
        .collect()
}

fn variants(item: &Value) -> Result<Vec<(String, String)>> {
    item.get("variants")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|variant| Ok((text_of(variant, "case")?, text_of(variant, "type")?)))
        .collect()
}

fn value_features(item: &Value) -> HashMap<String, Vec<String>> {
    item.get("members")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|member| {
            let features = strings(member.get("features"));
            let name = member.get("name")?.as_str()?;
            (!features.is_empty()).then(|| (name.to_owned(), features))
        })
        .collect()
}
