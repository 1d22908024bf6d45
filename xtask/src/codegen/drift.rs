//! Why one set of types covers every version: the model built from one
//! version's schema alone, read with the rules of the generated code
//! (unknown members ignored, unknown enumeration values and union variants
//! kept, optional members may be missing), against the other version's
//! recorded replies and events.

use serde_json::Value;

use super::model::{Model, Shape, Ty};

/// Whether a value of `ty` in `model` accepts `value` the way the generated
/// `Deserialize` does; `Err` says where it would fail.
pub(super) fn fits(model: &Model, ty: &Ty, value: &Value, path: &str) -> Result<(), String> {
    let fail = || Err(format!("{path}: {value} is not {ty:?}"));
    match (ty, value) {
        (Ty::Str, Value::String(_))
        | (Ty::Bool, Value::Bool(_))
        | (Ty::Null, Value::Null)
        | (Ty::Any, _)
        | (Ty::Empty, _) => Ok(()),
        (Ty::Int, Value::Number(n)) if n.is_i64() => Ok(()),
        (Ty::Number, Value::Number(_)) => Ok(()),
        (Ty::List(inner), Value::Array(items)) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| fits(model, inner, item, &format!("{path}[{i}]"))),
        (Ty::Named(name), value) => {
            let Some(def) = model.types.get(name) else {
                return Err(format!("{path}: no type {name}"));
            };
            match (&def.shape, value) {
                (Shape::Enum { .. }, Value::String(_)) => Ok(()),
                (Shape::Struct { fields }, Value::Object(object)) => {
                    for field in fields {
                        let required = field.required == def.present;
                        match object.get(&field.wire) {
                            Some(member) => {
                                fits(model, &field.ty, member, &format!("{path}.{}", field.wire))?
                            }
                            None if required => {
                                return Err(format!("{path}: required `{}` missing", field.wire));
                            }
                            None => {}
                        }
                    }
                    Ok(())
                }
                (
                    Shape::Union {
                        fields,
                        tag,
                        variants,
                    },
                    Value::Object(object),
                ) => {
                    for field in fields {
                        if let Some(member) = object.get(&field.wire) {
                            fits(model, &field.ty, member, &format!("{path}.{}", field.wire))?;
                        } else if field.required == def.present {
                            return Err(format!("{path}: required `{}` missing", field.wire));
                        }
                    }
                    let case = object.get(tag).and_then(Value::as_str);
                    let variant = variants.iter().find(|v| Some(v.case.as_str()) == case);
                    match variant.and_then(|v| v.ty.clone()) {
                        Some(variant_ty) => fits(model, &Ty::Named(variant_ty), value, path),
                        None => Ok(()),
                    }
                }
                // Alternates keep a value of any other shape.
                (Shape::Alternate { .. } | Shape::Conflict, _) => Ok(()),
                _ => fail(),
            }
        }
        _ => fail(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::fs;

    use super::*;
    use crate::cmd::workspace_root;
    use crate::codegen::schema;

    /// Every reply and event of `dir`'s transcript, checked against `model`.
    fn check(model: &Model, dir: &str) -> Vec<String> {
        let base = workspace_root().join("qmp-proto/tests/fixtures").join(dir);
        let read = |file: &str| fs::read_to_string(base.join(file)).unwrap_or_default();
        let lines = |text: String| -> Vec<Value> {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        };
        let names: HashMap<String, String> = lines(read("session.in"))
            .iter()
            .filter_map(|request| {
                let name = request.get("execute")?.as_str()?.to_owned();
                Some((request.get("id")?.to_string(), name))
            })
            .collect();
        let mut failures = Vec::new();
        let mut checked = 0;
        for message in lines(read("session.out")) {
            let result = if let Some(ret) = message.get("return") {
                let id = message.get("id").map(Value::to_string).unwrap_or_default();
                let Some(name) = names.get(&id) else { continue };
                let ret_ty = model.commands.get(name).map(|c| c.ret.clone());
                ret_ty.map(|ty| fits(model, &ty, ret, name))
            } else if let Some(event) = message.get("event").and_then(Value::as_str) {
                let data = message.get("data").cloned().unwrap_or(Value::Null);
                let data_ty = model.events.get(event).map(|e| e.data.clone());
                data_ty.map(|ty| match ty {
                    Some(name) => fits(model, &Ty::Named(name), &data, event),
                    None => Ok(()),
                })
            } else {
                continue;
            };
            checked += 1;
            match result {
                Some(Ok(())) => {}
                Some(Err(error)) => failures.push(error),
                None => failures.push(format!("{message}: not in the model")),
            }
        }
        assert!(checked > 30, "only {checked} messages checked in {dir}");
        failures
    }

    /// The merged model reads both transcripts; a model of one version
    /// alone fails on exactly the members the other version dropped.
    #[test]
    fn each_version_alone_would_not_do_the_merged_model_does() {
        let schemas = schema::load_all(&workspace_root().join("qmp-proto/tests/fixtures"))
            .unwrap_or_else(|error| panic!("{error}"));
        let merged = Model::build(&schemas).unwrap_or_else(|error| panic!("{error}"));
        for dir in ["qemu-7.2", "qemu-10.0"] {
            let failures = check(&merged, dir);
            assert!(
                failures.is_empty(),
                "{dir} with the merged types: {failures:?}"
            );
        }
        // Types from 7.2 alone: 10.0 no longer sends `singlestep`, which 7.2
        // requires — the drift that breaks single-version bindings.
        let only_7_2 = Model::build(&schemas[..1]).unwrap_or_else(|error| panic!("{error}"));
        let failures = check(&only_7_2, "qemu-10.0");
        assert_eq!(failures, ["query-status: required `singlestep` missing"]);
        // Types from 10.0 alone: 7.2 does not send a block node's `active`,
        // which 10.0 requires. Everything else of either version reads with
        // the other's types (unknown members ignored, values kept).
        let only_10_0 = Model::build(&schemas[1..]).unwrap_or_else(|error| panic!("{error}"));
        let failures = check(&only_10_0, "qemu-7.2");
        assert_eq!(
            failures,
            ["query-named-block-nodes[0]: required `active` missing"],
            "{failures:?}"
        );
    }
}
