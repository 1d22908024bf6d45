//! One model of the QMP interface across every recorded QEMU version.
//!
//! Introspection numbers its types anew in every version, so a type is
//! named by a *key* saying where it is used: `cmd:NAME` (a command's
//! arguments), `ret:NAME` (its return value), `event:NAME` (an event's
//! data), `Parent.member`, `Parent/case` (a union variant) and
//! `Parent|kind` (an alternate's branch), where `Parent` is the Rust name
//! of the type that uses it. Types are reached breadth-first from the
//! commands and events in name order; a type takes the name its key had
//! in an older version, else the hand-chosen one (`names.rs`), else one
//! derived from the key. Types of different versions that get the same
//! name are one Rust type whose members, variants and values are the union
//! of theirs, each marked with the versions that have it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use super::names::{chosen, pascal, unique};
use super::schema::{Entity, Release, Schema};
use crate::Result;

/// A set of versions: bit `i` is `Model::releases[i]`.
pub(crate) type Present = u32;

/// A Rust type as a member, variant or output uses it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Ty {
    Str,
    Int,
    Number,
    Bool,
    Null,
    Any,
    /// An object without members (`{}`).
    Empty,
    List(Box<Ty>),
    Named(String),
}

/// Which generated module a type lives in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Module {
    Commands,
    Events,
    Types,
}

pub(crate) struct TypeDef {
    /// The key that named it.
    pub(crate) key: String,
    pub(crate) module: Module,
    pub(crate) present: Present,
    pub(crate) shape: Shape,
    /// Reachable from some command's arguments.
    pub(crate) sent: bool,
    /// Reachable from some output or event.
    pub(crate) received: bool,
}

pub(crate) enum Shape {
    Struct {
        fields: Vec<Field>,
    },
    Union {
        fields: Vec<Field>,
        tag: String,
        variants: Vec<Variant>,
    },
    Enum {
        values: Vec<EnumValue>,
    },
    Alternate {
        branches: Vec<Branch>,
    },
    /// Different kinds of type in different versions.
    Conflict,
}

pub(crate) struct Field {
    pub(crate) wire: String,
    pub(crate) ty: Ty,
    pub(crate) present: Present,
    /// Versions in which it is not optional.
    pub(crate) required: Present,
    pub(crate) features: BTreeSet<String>,
}

pub(crate) struct Variant {
    pub(crate) case: String,
    /// `None` when the variant adds no member.
    pub(crate) ty: Option<String>,
    pub(crate) present: Present,
}

pub(crate) struct EnumValue {
    pub(crate) wire: String,
    pub(crate) present: Present,
    pub(crate) features: BTreeSet<String>,
}

pub(crate) struct Branch {
    pub(crate) ty: Ty,
    /// The JSON kind of its values, which tells branches apart.
    pub(crate) kind: &'static str,
    pub(crate) present: Present,
}

pub(crate) struct CommandDef {
    pub(crate) present: Present,
    /// The argument type; `None` for a command without arguments.
    pub(crate) args: Option<String>,
    /// The argument type is shared (with other commands or as a member):
    /// the command is a newtype around it.
    pub(crate) wrapper: bool,
    pub(crate) ret: Ty,
    pub(crate) features: BTreeSet<String>,
    /// Versions in which it takes no arguments at all.
    pub(crate) no_args: Present,
}

pub(crate) struct EventDef {
    pub(crate) present: Present,
    pub(crate) data: Option<String>,
    pub(crate) wrapper: bool,
    pub(crate) features: BTreeSet<String>,
}

pub(crate) struct Model {
    pub(crate) releases: Vec<Release>,
    pub(crate) types: BTreeMap<String, TypeDef>,
    pub(crate) commands: BTreeMap<String, CommandDef>,
    pub(crate) events: BTreeMap<String, EventDef>,
    /// What had to fall back to `serde_json::Value`, for the report.
    pub(crate) conflicts: Vec<String>,
}

impl Model {
    pub(crate) fn build(schemas: &[Schema]) -> Result<Self> {
        let mut model = Model {
            releases: schemas.iter().map(|s| s.release).collect(),
            types: BTreeMap::new(),
            commands: BTreeMap::new(),
            events: BTreeMap::new(),
            conflicts: Vec::new(),
        };
        let shared = shared_roots(schemas)?;
        let mut known_keys: HashMap<String, String> = HashMap::new();
        for (index, schema) in schemas.iter().enumerate() {
            let bit = 1 << index;
            // Hand-chosen names win over the first use's: re-run the naming
            // with them forced until nothing changes.
            let mut forced: HashMap<String, String> = HashMap::new();
            let mut naming;
            let mut rounds = 0;
            loop {
                naming = Naming::run(schema, &shared, &known_keys, &forced, &model)?;
                // Each type prefers the name a key had in an older version,
                // then a hand-chosen one, whichever use reaches it first.
                let mut preferred: HashMap<&String, String> = HashMap::new();
                for (key, id) in &naming.edges {
                    if let Some(name) = known_keys.get(key) {
                        preferred.entry(id).or_insert_with(|| name.clone());
                    }
                }
                for (key, id) in &naming.edges {
                    if let Some(name) = chosen(key) {
                        preferred.entry(id).or_insert_with(|| name.to_owned());
                    }
                }
                let mut changed = false;
                let mut preferred: Vec<_> = preferred.into_iter().collect();
                preferred.sort();
                for (id, name) in preferred {
                    let taken = forced.iter().any(|(i, n)| *n == name && i != id);
                    if naming.names[id] != name && !forced.contains_key(id) && !taken {
                        forced.insert(id.clone(), name);
                        changed = true;
                    }
                }
                rounds += 1;
                if !changed || rounds > 8 {
                    break;
                }
            }
            for (key, id) in &naming.edges {
                known_keys
                    .entry(key.clone())
                    .or_insert_with(|| naming.names[id].clone());
            }
            model.absorb(schema, bit, &naming, &shared)?;
        }
        // A command that took no arguments in some version has an argument
        // struct without members there: its members are missing there.
        for command in model.commands.values() {
            if let Some(def) = command.args.as_ref().and_then(|a| model.types.get_mut(a)) {
                def.present |= command.no_args;
            }
        }
        model.mark_directions();
        Ok(model)
    }

    /// Merges one version's types, commands and events into the model.
    fn absorb(
        &mut self,
        schema: &Schema,
        bit: Present,
        naming: &Naming,
        shared: &HashSet<String>,
    ) -> Result {
        let mut pending: VecDeque<(&String, &String)> =
            naming.order.iter().map(|(id, name)| (id, name)).collect();
        while let Some((id, name)) = pending.pop_front() {
            let mut retry = false;
            let entity = schema.get(id)?;
            let key = naming.first_key[id].clone();
            let module = naming.module(name);
            let def = self.types.entry(name.clone()).or_insert_with(|| TypeDef {
                key,
                module,
                present: 0,
                shape: empty_shape(entity),
                sent: false,
                received: false,
            });
            def.present |= bit;
            let resolve = |ty: &str| naming.ty(schema, ty);
            // A string that became an enumeration (or back) stays the
            // enumeration: it keeps unknown values, so any string decodes.
            let is_enum = |name: &str| {
                naming
                    .order
                    .iter()
                    .find(|(_, n)| n == name)
                    .and_then(|(id, _)| schema.get(id).ok())
                    .is_some_and(|e| matches!(e, Entity::Enum { .. }))
            };
            let conflict = match (&mut def.shape, entity) {
                (
                    Shape::Struct { fields },
                    Entity::Object {
                        members, tag: None, ..
                    },
                ) => {
                    merge_fields(
                        fields,
                        members,
                        bit,
                        (resolve, is_enum),
                        &mut self.conflicts,
                        name,
                    )?;
                    false
                }
                (
                    Shape::Union {
                        fields,
                        tag,
                        variants,
                    },
                    Entity::Object {
                        members,
                        tag: Some(entity_tag),
                        variants: entity_variants,
                    },
                ) if tag == entity_tag => {
                    merge_fields(
                        fields,
                        members,
                        bit,
                        (resolve, is_enum),
                        &mut self.conflicts,
                        name,
                    )?;
                    for (case, variant_ty) in entity_variants {
                        let ty = match naming.ty(schema, variant_ty)? {
                            Ty::Named(name) => Some(name),
                            _ => None,
                        };
                        match variants.iter_mut().find(|v| &v.case == case) {
                            Some(variant) => {
                                variant.present |= bit;
                                if variant.ty != ty {
                                    self.conflicts.push(format!("{name}/{case}: variant type"));
                                    variant.ty = variant.ty.clone().or(ty);
                                }
                            }
                            None => variants.push(Variant {
                                case: case.clone(),
                                ty,
                                present: bit,
                            }),
                        }
                    }
                    false
                }
                (
                    Shape::Enum { values },
                    Entity::Enum {
                        values: entity_values,
                        value_features,
                    },
                ) => {
                    for wire in entity_values {
                        let features = value_features.get(wire).into_iter().flatten().cloned();
                        match values.iter_mut().find(|v| &v.wire == wire) {
                            Some(value) => {
                                value.present |= bit;
                                value.features.extend(features);
                            }
                            None => values.push(EnumValue {
                                wire: wire.clone(),
                                present: bit,
                                features: features.collect(),
                            }),
                        }
                    }
                    false
                }
                (Shape::Alternate { branches }, Entity::Alternate { branches: types }) => {
                    for branch_ty in types {
                        let ty = naming.ty(schema, branch_ty)?;
                        let kind = json_kind(schema, branch_ty)?;
                        match branches.iter_mut().find(|b| b.kind == kind) {
                            Some(branch) => {
                                branch.present |= bit;
                                if branch.ty != ty {
                                    self.conflicts.push(format!("{name}: alternate branch"));
                                    branch.ty = Ty::Any;
                                }
                            }
                            None => branches.push(Branch {
                                ty,
                                kind,
                                present: bit,
                            }),
                        }
                    }
                    false
                }
                (Shape::Struct { fields }, Entity::Object { tag: Some(tag), .. }) => {
                    // A struct that became a union (`BlockJobInfo` in 10.0):
                    // its members become the base, and this version's
                    // variants are added on the next pass below.
                    def.shape = Shape::Union {
                        fields: std::mem::take(fields),
                        tag: tag.clone(),
                        variants: Vec::new(),
                    };
                    retry = true;
                    false
                }
                (
                    Shape::Union { fields, .. },
                    Entity::Object {
                        members, tag: None, ..
                    },
                ) => {
                    merge_fields(
                        fields,
                        members,
                        bit,
                        (resolve, is_enum),
                        &mut self.conflicts,
                        name,
                    )?;
                    false
                }
                (Shape::Conflict, _) => false,
                _ => true,
            };
            if conflict {
                self.conflicts.push(format!(
                    "{name}: a different kind of type in {:?}",
                    schema.release
                ));
                def.shape = Shape::Conflict;
            }
            if retry {
                pending.push_front((id, name));
            }
        }
        for command in &schema.commands {
            let Entity::Command { arg, ret, features } = schema.get(command)? else {
                continue;
            };
            let args = match naming.ty(schema, arg)? {
                Ty::Named(name) => Some(name),
                _ => None,
            };
            let ret = naming.ty(schema, ret)?;
            let def = self
                .commands
                .entry(command.clone())
                .or_insert_with(|| CommandDef {
                    present: 0,
                    args: args.clone(),
                    wrapper: shared.contains(&format!("cmd:{command}")),
                    ret: ret.clone(),
                    features: BTreeSet::new(),
                    no_args: 0,
                });
            def.present |= bit;
            if args.is_none() {
                def.no_args |= bit;
            }
            def.features.extend(features.iter().cloned());
            if args.is_some() && def.args != args {
                if def.args.is_some() {
                    self.conflicts.push(format!("{command}: argument type"));
                }
                def.args = def.args.clone().or(args);
            }
            if def.ret != ret {
                self.conflicts.push(format!("{command}: return type"));
                def.ret = Ty::Any;
            }
        }
        for event in &schema.events {
            let Entity::Event { arg, features } = schema.get(event)? else {
                continue;
            };
            let data = match naming.ty(schema, arg)? {
                Ty::Named(name) => Some(name),
                _ => None,
            };
            let def = self
                .events
                .entry(event.clone())
                .or_insert_with(|| EventDef {
                    present: 0,
                    data: data.clone(),
                    wrapper: shared.contains(&format!("event:{event}")),
                    features: BTreeSet::new(),
                });
            def.present |= bit;
            def.features.extend(features.iter().cloned());
            if def.data != data {
                self.conflicts.push(format!("{event}: data type"));
                def.data = def.data.clone().or(data);
            }
        }
        Ok(())
    }

    /// Marks what is sent (reachable from arguments) and what is received.
    fn mark_directions(&mut self) {
        let sent: Vec<String> = self
            .commands
            .values()
            .filter_map(|c| c.args.clone())
            .collect();
        let mut received: Vec<String> = self
            .events
            .values()
            .filter_map(|e| e.data.clone())
            .collect();
        for command in self.commands.values() {
            named_in(&command.ret, &mut received);
        }
        self.mark(sent, |def| &mut def.sent);
        self.mark(received, |def| &mut def.received);
    }

    fn mark(&mut self, roots: Vec<String>, flag: impl Fn(&mut TypeDef) -> &mut bool) {
        let mut queue = VecDeque::from(roots);
        while let Some(name) = queue.pop_front() {
            let Some(def) = self.types.get_mut(&name) else {
                continue;
            };
            if std::mem::replace(flag(def), true) {
                continue;
            }
            queue.extend(def.references());
        }
    }

    /// Every version, as a set.
    pub(crate) fn all(&self) -> Present {
        (1 << self.releases.len()) - 1
    }
}

impl TypeDef {
    /// The named types its members, variants and branches use.
    pub(crate) fn references(&self) -> Vec<String> {
        let mut next = Vec::new();
        match &self.shape {
            Shape::Struct { fields } => fields.iter().for_each(|f| named_in(&f.ty, &mut next)),
            Shape::Union {
                fields, variants, ..
            } => {
                fields.iter().for_each(|f| named_in(&f.ty, &mut next));
                next.extend(variants.iter().filter_map(|v| v.ty.clone()));
            }
            Shape::Alternate { branches } => {
                branches.iter().for_each(|b| named_in(&b.ty, &mut next))
            }
            Shape::Enum { .. } | Shape::Conflict => {}
        }
        next
    }
}

/// The named types `ty` mentions.
pub(crate) fn named_in(ty: &Ty, out: &mut Vec<String>) {
    match ty {
        Ty::Named(name) => out.push(name.clone()),
        Ty::List(inner) => named_in(inner, out),
        _ => {}
    }
}

/// The JSON kind of the values of the introspection type `id`.
fn json_kind(schema: &Schema, id: &str) -> Result<&'static str> {
    Ok(match schema.get(id)? {
        Entity::Builtin { json_type } => match json_type.as_str() {
            "string" => "string",
            "int" | "number" => "number",
            "boolean" => "boolean",
            "null" => "null",
            _ => "value",
        },
        Entity::Enum { .. } => "string",
        Entity::Array { .. } => "array",
        _ => "object",
    })
}

fn empty_shape(entity: &Entity) -> Shape {
    match entity {
        Entity::Object { tag: Some(tag), .. } => Shape::Union {
            fields: Vec::new(),
            tag: tag.clone(),
            variants: Vec::new(),
        },
        Entity::Object { .. } => Shape::Struct { fields: Vec::new() },
        Entity::Enum { .. } => Shape::Enum { values: Vec::new() },
        Entity::Alternate { .. } => Shape::Alternate {
            branches: Vec::new(),
        },
        _ => Shape::Conflict,
    }
}

fn merge_fields(
    fields: &mut Vec<Field>,
    members: &[super::schema::Member],
    bit: Present,
    (resolve, is_enum): (impl Fn(&str) -> Result<Ty>, impl Fn(&str) -> bool),
    conflicts: &mut Vec<String>,
    owner: &str,
) -> Result {
    for member in members {
        let ty = resolve(&member.ty)?;
        let required = if member.optional { 0 } else { bit };
        match fields.iter_mut().find(|f| f.wire == member.name) {
            Some(field) => {
                field.present |= bit;
                field.required |= required;
                field.features.extend(member.features.iter().cloned());
                let widened = match (&field.ty, &ty) {
                    (Ty::Str, Ty::Named(name)) | (Ty::Named(name), Ty::Str) if is_enum(name) => {
                        Some(Ty::Named(name.clone()))
                    }
                    _ => None,
                };
                if let Some(widened) = widened {
                    field.ty = widened;
                } else if field.ty != ty {
                    conflicts.push(format!(
                        "{owner}.{}: {:?} in one version, {:?} in another",
                        member.name, field.ty, ty
                    ));
                    field.ty = Ty::Any;
                }
            }
            None => fields.push(Field {
                wire: member.name.clone(),
                ty,
                present: bit,
                required,
                features: member.features.iter().cloned().collect(),
            }),
        }
    }
    Ok(())
}

/// The roots (`cmd:NAME`, `event:NAME`) whose type something else uses too,
/// in any version: their command or event becomes a newtype around it.
fn shared_roots(schemas: &[Schema]) -> Result<HashSet<String>> {
    let mut shared = HashSet::new();
    for schema in schemas {
        let mut uses: HashMap<&str, usize> = HashMap::new();
        let mut roots: Vec<(String, &str)> = Vec::new();
        for command in &schema.commands {
            if let Entity::Command { arg, ret, .. } = schema.get(command)? {
                *uses.entry(arg).or_default() += 1;
                *uses.entry(ret).or_default() += 1;
                roots.push((format!("cmd:{command}"), arg));
            }
        }
        for event in &schema.events {
            if let Entity::Event { arg, .. } = schema.get(event)? {
                *uses.entry(arg).or_default() += 1;
                roots.push((format!("event:{event}"), arg));
            }
        }
        for entity in schema.entities() {
            match entity {
                Entity::Object {
                    members, variants, ..
                } => {
                    for member in members {
                        *uses.entry(&member.ty).or_default() += 1;
                    }
                    for (_, ty) in variants {
                        *uses.entry(ty).or_default() += 1;
                    }
                }
                Entity::Array { element } => *uses.entry(element).or_default() += 1,
                Entity::Alternate { branches } => {
                    for ty in branches {
                        *uses.entry(ty).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        for (root, id) in roots {
            let empty = matches!(schema.get(id)?, Entity::Object { members, variants, .. }
                if members.is_empty() && variants.is_empty());
            if !empty && uses.get(id).copied().unwrap_or(0) > 1 {
                shared.insert(root);
            }
        }
    }
    Ok(shared)
}

/// One version's naming: which Rust name each numbered type gets.
struct Naming {
    /// id → name.
    names: HashMap<String, String>,
    /// id → the key that named it.
    first_key: HashMap<String, String>,
    /// (id, name) in the order they were reached.
    order: Vec<(String, String)>,
    /// Every (key, id) use.
    edges: Vec<(String, String)>,
    /// The names of types living in the commands or events module.
    modules: HashMap<String, Module>,
}

impl Naming {
    fn run(
        schema: &Schema,
        shared: &HashSet<String>,
        known_keys: &HashMap<String, String>,
        forced: &HashMap<String, String>,
        model: &Model,
    ) -> Result<Self> {
        let mut naming = Naming {
            names: HashMap::new(),
            first_key: HashMap::new(),
            order: Vec::new(),
            edges: Vec::new(),
            modules: HashMap::new(),
        };
        // Names a derived name must not take: commands and events (their
        // structs), every name of an older version, every forced name.
        let mut commands: HashSet<String> = HashSet::new();
        let mut events: HashSet<String> = HashSet::new();
        for command in model.commands.keys().chain(&schema.commands) {
            commands.insert(pascal(command));
        }
        for event in model.events.keys().chain(&schema.events) {
            events.insert(pascal(event));
        }
        let mut taken: HashSet<String> = model.types.keys().cloned().collect();
        taken.extend(forced.values().cloned());
        taken.extend(known_keys.values().cloned());

        let mut queue: VecDeque<(String, String)> = VecDeque::new();
        let mut roots: Vec<(String, String)> = Vec::new();
        for command in &schema.commands {
            if let Entity::Command { arg, ret, .. } = schema.get(command)? {
                roots.push((format!("cmd:{command}"), arg.clone()));
                roots.push((format!("ret:{command}"), ret.clone()));
            }
        }
        for event in &schema.events {
            if let Entity::Event { arg, .. } = schema.get(event)? {
                roots.push((format!("event:{event}"), arg.clone()));
            }
        }
        let mut reach = |naming: &mut Naming,
                         queue: &mut VecDeque<(String, String)>,
                         key: String,
                         id: &str|
         -> Result<()> {
            let id = element_of(schema, id)?;
            if !is_named(schema.get(&id)?) {
                return Ok(());
            }
            naming.edges.push((key.clone(), id.clone()));
            if naming.names.contains_key(&id) {
                return Ok(());
            }
            let root_module = match key.split_once(':') {
                Some(("cmd", _)) if !shared.contains(&key) => Some(Module::Commands),
                Some(("event", _)) if !shared.contains(&key) => Some(Module::Events),
                _ => None,
            };
            let name = if let Some(name) = forced.get(&id) {
                name.clone()
            } else if let Some(module) = root_module {
                // The command's or event's own struct.
                let (_, wire) = key.split_once(':').unwrap_or_default();
                naming.modules.insert(pascal(wire), module);
                pascal(wire)
            } else if let Some(name) = known_keys.get(&key) {
                name.clone()
            } else if let Some(name) = chosen(&key).filter(|n| !taken.contains(*n)) {
                name.to_owned()
            } else {
                let used = |candidate: &str| {
                    taken.contains(candidate)
                        || commands.contains(candidate)
                        || events.contains(candidate)
                };
                unique(derive(&key), used)
            };
            taken.insert(name.clone());
            naming.names.insert(id.clone(), name.clone());
            naming.first_key.insert(id.clone(), key);
            naming.order.push((id.clone(), name.clone()));
            queue.push_back((id, name));
            Ok(())
        };
        for (key, id) in roots {
            reach(&mut naming, &mut queue, key, &id)?;
            while let Some((id, name)) = queue.pop_front() {
                match schema.get(&id)? {
                    Entity::Object {
                        members, variants, ..
                    } => {
                        for member in members {
                            reach(
                                &mut naming,
                                &mut queue,
                                format!("{name}.{}", member.name),
                                &member.ty,
                            )?;
                        }
                        for (case, ty) in variants {
                            reach(&mut naming, &mut queue, format!("{name}/{case}"), ty)?;
                        }
                    }
                    Entity::Alternate { branches } => {
                        for ty in branches {
                            let kind = match schema.get(ty)? {
                                Entity::Enum { .. } => "enum",
                                Entity::Array { .. } => "list",
                                _ => "object",
                            };
                            reach(&mut naming, &mut queue, format!("{name}|{kind}"), ty)?;
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(naming)
    }

    fn module(&self, name: &str) -> Module {
        self.modules.get(name).copied().unwrap_or(Module::Types)
    }

    /// The Rust type of the introspection type `id`.
    fn ty(&self, schema: &Schema, id: &str) -> Result<Ty> {
        Ok(match schema.get(id)? {
            Entity::Builtin { json_type } => match json_type.as_str() {
                "string" => Ty::Str,
                "int" => Ty::Int,
                "number" => Ty::Number,
                "boolean" => Ty::Bool,
                "null" => Ty::Null,
                _ => Ty::Any,
            },
            Entity::Array { element } => Ty::List(Box::new(self.ty(schema, element)?)),
            Entity::Object {
                members, variants, ..
            } if members.is_empty() && variants.is_empty() => Ty::Empty,
            _ => match self.names.get(id) {
                Some(name) => Ty::Named(name.clone()),
                None => return Err(format!("type {id} was never reached")),
            },
        })
    }
}

/// Arrays are transparent to naming: their element is the type named.
fn element_of(schema: &Schema, id: &str) -> Result<String> {
    match schema.get(id)? {
        Entity::Array { element } => element_of(schema, element),
        _ => Ok(id.to_owned()),
    }
}

fn is_named(entity: &Entity) -> bool {
    match entity {
        Entity::Object {
            members, variants, ..
        } => !members.is_empty() || !variants.is_empty(),
        Entity::Enum { .. } | Entity::Alternate { .. } => true,
        _ => false,
    }
}

/// The name a key gives when nothing else does.
fn derive(key: &str) -> String {
    if let Some(command) = key.strip_prefix("cmd:") {
        return pascal(command) + "Arguments";
    }
    if let Some(command) = key.strip_prefix("ret:") {
        return match command.strip_prefix("query-") {
            Some(what) => pascal(what) + "Info",
            None => pascal(command) + "Output",
        };
    }
    if let Some(event) = key.strip_prefix("event:") {
        return pascal(event) + "Data";
    }
    let split = key.find(['.', '/', '|']).unwrap_or(key.len());
    let (parent, rest) = key.split_at(split);
    format!("{parent}{}", pascal(rest.get(1..).unwrap_or("")))
}
