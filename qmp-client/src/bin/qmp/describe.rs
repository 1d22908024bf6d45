//! `qmp schema COMMAND`: a command's arguments as readable text.

use std::fmt::Write;

use crate::schema::{Member, Schema, Type};

/// How deep nested objects are spelt out (deeper ones print as `object`).
const MAX_DEPTH: usize = 3;

/// `command`'s arguments, one per line: `name: type`, `name?` when
/// optional, enum values, nested objects indented, union branches under
/// `when TAG=CASE:`; then its return type. `None` for an unknown command.
pub(crate) fn describe(schema: &Schema, command: &str) -> Option<String> {
    let info = schema.command(command)?;
    let mut text = format!("{command}\n");
    match schema.type_named(&info.arg_type) {
        Some(Type::Object {
            members, variants, ..
        }) if members.is_empty() && variants.is_empty() => {
            text.push_str("  (no arguments)\n");
        }
        _ => object_body(schema, &info.arg_type, 1, &mut text),
    }
    let _ = writeln!(text, "returns: {}", summary(schema, &info.ret_type));
    Some(text)
}

fn object_body(schema: &Schema, type_name: &str, depth: usize, text: &mut String) {
    let Some(Type::Object {
        members,
        tag,
        variants,
    }) = schema.type_named(type_name)
    else {
        return;
    };
    for member in members {
        member_line(schema, member, depth, text);
    }
    let Some(tag) = tag else { return };
    for variant in variants {
        let has_members = matches!(
            schema.type_named(&variant.type_name),
            Some(Type::Object { members, variants, .. }) if !members.is_empty() || !variants.is_empty()
        );
        if has_members {
            let _ = writeln!(text, "{}when {tag}={}:", indent(depth), variant.case);
            object_body(schema, &variant.type_name, depth + 1, text);
        }
    }
}

fn member_line(schema: &Schema, member: &Member, depth: usize, text: &mut String) {
    let optional = if member.default { "?" } else { "" };
    let _ = writeln!(
        text,
        "{}{}{optional}: {}",
        indent(depth),
        member.name,
        summary(schema, &member.type_name)
    );
    if depth < MAX_DEPTH
        && matches!(
            schema.type_named(&member.type_name),
            Some(Type::Object { .. })
        )
    {
        object_body(schema, &member.type_name, depth + 1, text);
    }
}

/// A type on one line: builtins by name, `enum (a | b)`, `[T]`, `A | B`,
/// `object`.
fn summary(schema: &Schema, type_name: &str) -> String {
    summary_at(schema, type_name, 0)
}

fn summary_at(schema: &Schema, type_name: &str, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "…".to_owned();
    }
    match schema.type_named(type_name) {
        Some(Type::Builtin(name)) => name.clone(),
        Some(Type::Enum(values)) => format!("enum ({})", values.join(" | ")),
        Some(Type::Array(element)) => format!("[{}]", summary_at(schema, element, depth + 1)),
        Some(Type::Object {
            members, variants, ..
        }) if members.is_empty() && variants.is_empty() => "{}".to_owned(),
        Some(Type::Object { .. }) => "object".to_owned(),
        Some(Type::Alternate(types)) => types
            .iter()
            .map(|t| summary_at(schema, t, depth + 1))
            .collect::<Vec<_>>()
            .join(" | "),
        None => type_name.to_owned(),
    }
}

fn indent(depth: usize) -> String {
    "  ".repeat(depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::from_reply(json!([
            {"name": "blockdev-add", "meta-type": "command", "arg-type": "1", "ret-type": "0"},
            {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "5"},
            {"name": "0", "meta-type": "object", "members": []},
            {"name": "1", "meta-type": "object", "tag": "driver",
             "members": [{"name": "driver", "type": "2"}, {"name": "node-name", "type": "str", "default": null}],
             "variants": [{"case": "file", "type": "3"}, {"case": "null-co", "type": "0"}]},
            {"name": "2", "meta-type": "enum", "values": ["file", "null-co"]},
            {"name": "3", "meta-type": "object", "members": [
                {"name": "filename", "type": "str"},
                {"name": "locking", "type": "4", "default": null},
                {"name": "aio", "type": "[str]", "default": null}]},
            {"name": "4", "meta-type": "alternate", "members": [{"type": "bool"}, {"type": "2"}]},
            {"name": "5", "meta-type": "object", "members": [{"name": "running", "type": "bool"}]},
            {"name": "[str]", "meta-type": "array", "element-type": "str"},
            {"name": "str", "meta-type": "builtin", "json-type": "string"},
            {"name": "bool", "meta-type": "builtin", "json-type": "boolean"},
            {"name": "SHUTDOWN", "meta-type": "event", "arg-type": "0"},
            {"name": "9", "meta-type": "something-new"}
        ]))
    }

    #[test]
    fn arguments_with_types_optional_marks_enums_and_branches() {
        let got = describe(&schema(), "blockdev-add");
        let expected = "\
blockdev-add
  driver: enum (file | null-co)
  node-name?: str
  when driver=file:
    filename: str
    locking?: bool | enum (file | null-co)
    aio?: [str]
returns: {}
";
        assert_eq!(got.as_deref(), Some(expected));
    }

    #[test]
    fn no_arguments_and_unknown_commands() {
        let got = describe(&schema(), "query-status");
        assert_eq!(
            got.as_deref(),
            Some("query-status\n  (no arguments)\nreturns: object\n")
        );
        assert_eq!(describe(&schema(), "nope"), None);
    }
}
